//! Warnings from loading a model (e.g. tensors the config does not use), which the engine gives
//! to whoever is listening: stderr by default, or a sink the explorer installs while it owns the
//! terminal (where a stray line on stderr would tear its screen).

use std::sync::Mutex;

type Sink = Box<dyn Fn(&str) + Send>;

static SINK: Mutex<Option<Sink>> = Mutex::new(None);

/// Reports `message`: to the installed sink, else as `warning: …` on stderr.
pub fn warn(message: &str) {
    let sink = SINK.lock().unwrap_or_else(|e| e.into_inner());
    match sink.as_ref() {
        Some(f) => f(message),
        None => eprintln!("warning: {message}"),
    }
}

/// Sends later warnings to `sink` (`None`: back to stderr); returns the previous sink.
pub fn set_sink(sink: Option<Sink>) -> Option<Sink> {
    std::mem::replace(&mut *SINK.lock().unwrap_or_else(|e| e.into_inner()), sink)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex as StdMutex};

    #[test]
    fn warnings_go_to_the_installed_sink() {
        let seen = Arc::new(StdMutex::new(Vec::new()));
        let kept = Arc::clone(&seen);
        let previous = set_sink(Some(Box::new(move |m| kept.lock().unwrap().push(m.to_string()))));
        warn("unused tensors: x");
        set_sink(previous);
        assert!(seen.lock().unwrap().contains(&"unused tensors: x".to_string()));
    }
}

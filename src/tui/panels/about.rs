//! The about panel: what is loaded — dataset (and that the demo is synthetic), both models and any
//! extra systems, device.

use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::compare::Comparison;
use super::users::Users;
use super::{megabytes, ms, Chrome, Loadable};

/// The configured dataset and device, as the user wrote them.
pub struct Setup<'a> {
    pub dataset: &'a str,
    pub device: &'a str,
}

/// What is loaded: `data` from `dataset` (as configured), the columns' systems, the device.
pub fn draw(
    chrome: Chrome<'_>,
    frame: &mut Frame,
    rect: Rect,
    users: &Users,
    compare: &Comparison,
    what: Setup<'_>,
) {
    let t = chrome.theme;
    let mut lines = vec![
        Line::styled("prism-explorer: Oracle (teacher) vs Prism (distilled student)", t.title),
        Line::raw(""),
    ];
    match &users.data {
        Loadable::Ready(d) => {
            lines.push(Line::styled(format!("Dataset: {} ({})", d.name, what.dataset), t.text));
            lines.push(Line::styled(
                format!("{} users · {} items · {} interactions", d.users.len(), d.items, d.interactions),
                t.dim,
            ));
            if d.synthetic {
                lines.push(Line::styled(
                    "The demo data is synthetic: invented films and users, not real people or opinions.",
                    t.warn,
                ));
            }
            if !d.description.is_empty() {
                lines.push(Line::styled(d.description.clone(), t.dim));
            }
        }
        Loadable::Loading => lines.push(Line::styled(format!("Dataset: {} (loading…)", what.dataset), t.dim)),
        Loadable::Failed(m) => lines.push(Line::styled(format!("Dataset {}: {m}", what.dataset), t.error)),
    }
    lines.push(Line::raw(""));
    for pane in &compare.panes {
        let status = match &pane.model {
            Loadable::Ready(m) if m.param_bytes == 0 => {
                format!("{}, loaded in {}", m.architecture, ms(m.load_ms))
            }
            Loadable::Ready(m) => format!(
                "{}, {} of weights, loaded in {}{}",
                m.architecture,
                megabytes(m.param_bytes as f64),
                ms(m.load_ms),
                m.history_items
                    .map_or(String::new(), |n| format!("; its prompt shows the {n} newest history items"))
            ),
            Loadable::Loading => "loading…".to_owned(),
            Loadable::Failed(m) => format!("not loaded: {m}"),
        };
        lines.push(Line::styled(format!("{}: {} — {status}", pane.name, pane.source.location()), t.text));
    }
    lines.push(Line::styled(format!("Device: {}", what.device), t.dim));
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "Explanations are generated live by the checkpoints above; nothing is canned. Timings of the \
         two models are measured while both run at once, so they share the CPU.",
        t.dim,
    ));
    let para = Paragraph::new(lines).wrap(Wrap { trim: false }).block(chrome.block(" About "));
    frame.render_widget(para, rect);
}

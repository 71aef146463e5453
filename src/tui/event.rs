//! The explorer's messages: what the terminal and the workers tell the app ([`Event`]; answers
//! carry the id of the request they answer) and the work the app asks for ([`Effect`]). Both
//! `app` and `workers` speak them; neither reaches into the other.

use std::path::PathBuf;
use std::time::Duration;

use crossterm::event::{KeyEvent, MouseEvent};

use super::panels::compare::{Answer, ModelInfo};
use super::panels::history::HistoryRow;
use super::panels::jobs::JobMsg;
use super::panels::ranked::RankedRow;
use super::panels::users::DataView;

/// What the workers and the terminal tell the app.
#[derive(Clone, Debug)]
pub enum Event {
    Key(KeyEvent),
    Mouse(MouseEvent),
    Resize(u16, u16),
    /// Time since the explorer started; drives live timers.
    Tick(Duration),
    Data(Result<DataView, String>),
    /// A column's system loaded (a model, or a file of explanations), or could not be.
    Model {
        pane: usize,
        result: Result<ModelInfo, String>,
    },
    History {
        req: u64,
        rows: Vec<HistoryRow>,
    },
    Ranked {
        req: u64,
        result: Result<Vec<RankedRow>, String>,
    },
    /// The ranker is being built (BPR trains on first use); one line of progress.
    RankProgress {
        req: u64,
        line: String,
    },
    Text {
        req: u64,
        pane: usize,
        text: String,
    },
    Explained {
        req: u64,
        pane: usize,
        result: Result<Answer, String>,
    },
    Job(JobMsg),
    /// An annotation session opened from the explorer ended: what was done, or why it failed.
    Annotated(Result<String, String>),
}

/// Work the event loop starts for the app.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// History and top-K of `user` by `ranker`.
    Rank {
        req: u64,
        user: String,
        ranker: String,
    },
    /// Every column's system explains `item` for `user`; supersedes (and cancels) any earlier
    /// request.
    Explain {
        req: u64,
        user: String,
        item: String,
    },
    CancelExplain,
    StartJob,
    AttachJob(PathBuf),
    /// Cancel the job started here, or stop watching an attached one.
    CancelJob,
    /// Hand the terminal to an annotation session of `study` until the annotator quits.
    Annotate {
        study: PathBuf,
        annotator: String,
    },
    Quit,
}

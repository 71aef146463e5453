//! The annotation session as a pure state machine: [`update`] takes the session, an [`Event`]
//! (a key press or a line, translated by the front end) and the time, and returns the next
//! session plus the [`Judgement`] to append when an answer was completed. It does no IO; the
//! front end appends (fsynced) the judgement before it draws the next [`Screen`], which is how
//! a kill loses at most the item on screen.
//!
//! Items come in the annotator's [`Assignment`] order, starting at the first one without a
//! recorded answer. `Back` and `Next` move between items keeping unfinished drafts; an item
//! that already has an answer shows it, and finishing it again appends a new judgement only if
//! the answer changed.

use serde::Serialize;

use super::blind::{Assignment, ItemView};
use super::slot_letter;
use super::store::{Annotations, Judgement, Preference};
use super::study::Study;

/// What an annotator can do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Rate slot `slot` on criterion `criterion` (indices) with a score of 1–5.
    Rate {
        slot: usize,
        criterion: usize,
        score: u8,
    },
    Prefer(Preference),
    Note(String),
    /// Record the answer and show the next item.
    Next,
    /// Show the previous item (keeping this one's draft).
    Back,
    /// Leave; an unfinished answer on screen is not recorded.
    Quit,
}

/// An answer in progress: `ratings[slot][criterion]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Answer {
    pub ratings: Vec<Vec<Option<u8>>>,
    pub preference: Option<Preference>,
    pub note: String,
}

impl Answer {
    fn empty(slots: usize, criteria: usize) -> Answer {
        Answer { ratings: vec![vec![None; criteria]; slots], preference: None, note: String::new() }
    }

    /// `judgement` (recorded with its own slot order) as an answer for slots showing `texts`.
    fn from_judgement(judgement: &Judgement, texts: &[usize]) -> Answer {
        let slot_of = |text: usize| judgement.texts.iter().position(|&t| t == text);
        let ratings = texts
            .iter()
            .map(|&t| match slot_of(t) {
                Some(s) => judgement.ratings[s].iter().map(|&r| Some(r)).collect(),
                None => vec![None; judgement.ratings.first().map_or(0, Vec::len)],
            })
            .collect();
        let preference = match judgement.preference {
            Preference::Tie => Some(Preference::Tie),
            Preference::Slot(s) => {
                texts.iter().position(|&t| judgement.texts.get(s) == Some(&t)).map(Preference::Slot)
            }
        };
        Answer { ratings, preference, note: judgement.note.clone() }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Annotating,
    /// Every item has an answer; `Back` still goes back to change one.
    Done,
    Quit,
}

#[derive(Clone, Debug, PartialEq)]
struct Page {
    item: String,
    texts: Vec<usize>,
    view: ItemView,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    criteria: Vec<String>,
    pages: Vec<Page>,
    drafts: Vec<Answer>,
    saved: Vec<Option<Answer>>,
    cursor: usize,
    shown_at_ms: u64,
    phase: Phase,
    message: Option<String>,
}

/// What a front end draws.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Screen<'a> {
    /// 1-based position of the item on screen in the annotator's order (total + 1 when done).
    pub position: usize,
    pub total: usize,
    pub answered: usize,
    pub criteria: &'a [String],
    /// `None` when done or quit.
    pub item: Option<&'a ItemView>,
    pub answer: Option<&'a Answer>,
    /// Whether the item on screen has a recorded answer.
    pub recorded: bool,
    pub phase: Phase,
    pub message: Option<&'a str>,
}

impl Session {
    /// `annotator`'s session over `study`, resuming from what `recorded` holds.
    pub fn new(study: &Study, recorded: &Annotations, now_ms: u64) -> Session {
        let assignment = Assignment::for_study(study, &recorded.annotator);
        let latest = recorded.latest();
        let pages: Vec<Page> = assignment
            .order
            .iter()
            .map(|&i| {
                let item = &study.items[i];
                let texts = assignment.slots[i].clone();
                Page { item: item.id.clone(), view: ItemView::new(item, &texts), texts }
            })
            .collect();
        let saved: Vec<Option<Answer>> = pages
            .iter()
            .map(|p| latest.get(p.item.as_str()).map(|j| Answer::from_judgement(j, &p.texts)))
            .collect();
        let drafts = saved
            .iter()
            .map(|s| s.clone().unwrap_or_else(|| Answer::empty(study.slots, study.criteria.len())))
            .collect();
        let mut session = Session {
            criteria: study.criteria.clone(),
            pages,
            drafts,
            saved,
            cursor: 0,
            shown_at_ms: now_ms,
            phase: Phase::Annotating,
            message: None,
        };
        session.go_to_first_open();
        session
    }

    fn go_to_first_open(&mut self) {
        match self.saved.iter().position(Option::is_none) {
            Some(i) => {
                self.cursor = i;
                self.phase = Phase::Annotating;
            }
            None => {
                self.cursor = self.pages.len();
                self.phase = Phase::Done;
            }
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn screen(&self) -> Screen<'_> {
        let on_item = self.phase == Phase::Annotating;
        Screen {
            position: self.cursor + 1,
            total: self.pages.len(),
            answered: self.saved.iter().filter(|s| s.is_some()).count(),
            criteria: &self.criteria,
            item: on_item.then(|| &self.pages[self.cursor].view),
            answer: on_item.then(|| &self.drafts[self.cursor]),
            recorded: on_item && self.saved[self.cursor].is_some(),
            phase: self.phase,
            message: self.message.as_deref(),
        }
    }

    /// What the answer on screen still lacks, e.g. `["B persuasiveness", "preference"]`.
    fn missing(&self) -> Vec<String> {
        let answer = &self.drafts[self.cursor];
        let mut out: Vec<String> = answer
            .ratings
            .iter()
            .enumerate()
            .flat_map(|(s, r)| {
                r.iter()
                    .zip(&self.criteria)
                    .filter(|(v, _)| v.is_none())
                    .map(move |(_, c)| format!("{} {c}", slot_letter(s)))
            })
            .collect();
        if answer.preference.is_none() {
            out.push("preference".into());
        }
        out
    }

    fn next(&mut self, now_ms: u64) -> Option<Judgement> {
        let missing = self.missing();
        if !missing.is_empty() {
            self.message = Some(format!("not answered yet: {}", missing.join(", ")));
            return None;
        }
        let answer = self.drafts[self.cursor].clone();
        let page = &self.pages[self.cursor];
        let judgement = (self.saved[self.cursor].as_ref() != Some(&answer)).then(|| Judgement {
            item: page.item.clone(),
            texts: page.texts.clone(),
            ratings: answer
                .ratings
                .iter()
                .map(|r| r.iter().map(|v| v.unwrap_or_default()).collect())
                .collect(),
            preference: answer.preference.unwrap_or(Preference::Tie),
            note: answer.note.clone(),
            ms: now_ms.saturating_sub(self.shown_at_ms),
            at_ms: now_ms,
        });
        self.saved[self.cursor] = Some(answer);
        self.cursor += 1;
        if self.cursor == self.pages.len() {
            self.go_to_first_open();
        }
        self.shown_at_ms = now_ms;
        judgement
    }
}

/// The session after `event` at `now_ms` (Unix milliseconds), and the judgement to append
/// before the next screen is drawn.
pub fn update(mut s: Session, event: Event, now_ms: u64) -> (Session, Option<Judgement>) {
    s.message = None;
    if s.phase == Phase::Quit {
        return (s, None);
    }
    let slots = s.drafts.first().map_or(0, |a| a.ratings.len());
    let annotating = s.phase == Phase::Annotating;
    let mut judgement = None;
    match event {
        Event::Quit => s.phase = Phase::Quit,
        Event::Back if s.cursor == 0 => s.message = Some("this is the first item".into()),
        Event::Back => {
            s.cursor -= 1;
            s.phase = Phase::Annotating;
            s.shown_at_ms = now_ms;
        }
        _ if !annotating => {
            s.message = Some("every item is answered: `back` to change an answer, `quit` to leave".into())
        }
        Event::Rate { slot, criterion, score } => {
            if slot >= slots {
                s.message = Some(format!("there is no slot {}", slot_letter(slot)));
            } else if criterion >= s.criteria.len() {
                s.message = Some(format!("there is no criterion {}", criterion + 1));
            } else if !(1..=5).contains(&score) {
                s.message = Some(format!("ratings go from 1 to 5, not {score}"));
            } else {
                s.drafts[s.cursor].ratings[slot][criterion] = Some(score);
            }
        }
        Event::Prefer(Preference::Slot(slot)) if slot >= slots => {
            s.message = Some(format!("there is no slot {}", slot_letter(slot)));
        }
        Event::Prefer(p) => s.drafts[s.cursor].preference = Some(p),
        Event::Note(text) => s.drafts[s.cursor].note = text,
        Event::Next => judgement = s.next(now_ms),
    }
    (s, judgement)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::humaneval::store::Writer;
    use crate::humaneval::study::tests::make_study;

    fn answer_all(mut s: Session, a: u8, now: u64) -> (Session, Option<Judgement>) {
        for slot in 0..3 {
            for criterion in 0..2 {
                s = update(s, Event::Rate { slot, criterion, score: a }, now).0;
            }
        }
        s = update(s, Event::Prefer(Preference::Slot(1)), now).0;
        update(s, Event::Next, now + 1000)
    }

    #[test]
    fn next_needs_a_complete_answer_and_emits_one_judgement() {
        let (study, _) = make_study(4, 0);
        let recorded = Annotations { annotator: "ann".into(), ..Annotations::default() };
        let s = Session::new(&study, &recorded, 0);
        assert_eq!((s.screen().position, s.screen().total, s.screen().answered), (1, 4, 0));
        let (s, j) = update(s, Event::Rate { slot: 0, criterion: 0, score: 4 }, 10);
        assert!(j.is_none());
        let (s, j) = update(s, Event::Next, 20);
        assert!(j.is_none());
        let msg = s.screen().message.unwrap().to_owned();
        assert!(
            msg.contains("A persuasiveness") && msg.contains("C faithfulness") && msg.contains("preference")
        );
        assert!(!msg.contains("A faithfulness"), "{msg}");
        let (s, _) = update(s, Event::Rate { slot: 3, criterion: 0, score: 4 }, 20);
        assert_eq!(s.screen().message, Some("there is no slot D"));
        let (s, _) = update(s, Event::Rate { slot: 0, criterion: 0, score: 6 }, 20);
        assert_eq!(s.screen().message, Some("ratings go from 1 to 5, not 6"));
        let first = s.screen().item.unwrap().clone();
        let (s, j) = answer_all(s, 3, 500);
        let j = j.unwrap();
        assert_eq!((j.ms, j.at_ms, j.preference), (1500, 1500, Preference::Slot(1)));
        assert_eq!(j.ratings, vec![vec![3, 3]; 3]);
        let a = Assignment::for_study(&study, "ann");
        assert_eq!(j.item, study.items[a.order[0]].id);
        assert_eq!(j.texts, a.slots[a.order[0]]);
        assert_eq!((s.screen().position, s.screen().answered), (2, 1));
        assert_ne!(s.screen().item.unwrap(), &first);
    }

    #[test]
    fn back_shows_the_recorded_answer_and_a_change_supersedes_it() {
        let (study, _) = make_study(3, 0);
        let recorded = Annotations { annotator: "ann".into(), ..Annotations::default() };
        let s = Session::new(&study, &recorded, 0);
        let (s, j1) = answer_all(s, 2, 0);
        let (s, _) = update(s, Event::Rate { slot: 2, criterion: 1, score: 5 }, 0);
        let (s, _) = update(s, Event::Back, 0);
        assert!(s.screen().recorded);
        assert_eq!(s.screen().answer.unwrap().ratings[0][0], Some(2));
        // Next without a change records nothing new.
        let (s, j) = update(s, Event::Next, 0);
        assert!(j.is_none());
        assert_eq!(s.screen().answer.unwrap().ratings[2][1], Some(5), "the draft of item 2 was kept");
        let (s, _) = update(s, Event::Back, 0);
        let (s, _) = update(s, Event::Rate { slot: 0, criterion: 0, score: 5 }, 0);
        let (s, _) = update(s, Event::Note("changed my mind".into()), 0);
        let (s, j2) = update(s, Event::Next, 0);
        let (j1, j2) = (j1.unwrap(), j2.unwrap());
        assert_eq!(j1.item, j2.item);
        assert_eq!((j2.ratings[0][0], j2.note.as_str()), (5, "changed my mind"));
        let (s, _) = answer_all(s, 4, 0);
        let (s, _) = answer_all(s, 4, 0);
        assert_eq!(s.phase(), Phase::Done);
        assert_eq!((s.screen().answered, s.screen().item), (3, None));
        let (s, _) = update(s, Event::Next, 0);
        assert!(s.screen().message.unwrap().contains("every item is answered"));
        let (s, _) = update(s, Event::Back, 0);
        assert_eq!((s.phase(), s.screen().position), (Phase::Annotating, 3));
        let (s, _) = update(s, Event::Quit, 0);
        assert_eq!(s.phase(), Phase::Quit);
    }

    #[test]
    fn resume_after_a_kill_loses_only_the_item_on_screen() {
        let dir = tempfile::tempdir().unwrap();
        let (study, _) = make_study(5, 0);
        let load = || Annotations::load(dir.path(), &study, "ann").unwrap();
        let mut writer = Writer::open(
            dir.path(),
            &study,
            "ann",
            0,
            crate::humaneval::lock::AnnotatorLock::acquire(dir.path(), "ann").unwrap(),
        )
        .unwrap();
        let mut s = Session::new(&study, &load(), 0);
        let mut answered = Vec::new();
        for k in 0..2 {
            let (next, j) = answer_all(s, 2 + k, 0);
            let j = j.unwrap();
            writer.append(&j).unwrap();
            answered.push(j);
            s = next;
        }
        // Half an answer on item 3, then the process dies: the writer and session are gone.
        let (s, _) = update(s, Event::Rate { slot: 0, criterion: 0, score: 5 }, 0);
        let lost = s.screen().item.unwrap().clone();
        drop((s, writer));
        let s = Session::new(&study, &load(), 0);
        assert_eq!((s.screen().position, s.screen().answered), (3, 2));
        assert_eq!(s.screen().item.unwrap(), &lost, "the unfinished item is asked again");
        assert_eq!(s.screen().answer.unwrap().ratings[0][0], None);
        let (s, _) = update(s, Event::Back, 0);
        let a = s.screen().answer.unwrap();
        assert_eq!((a.ratings[0][0], a.preference), (Some(3), Some(Preference::Slot(1))));
    }
}

//! Where each panel and tab label goes for a terminal size and screen: pure functions shared by
//! drawing and by mouse handling, so a click maps to exactly what was drawn there.

use ratatui::layout::{Constraint, Direction, Layout, Rect};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Explore,
    Performance,
    Jobs,
    About,
}

impl Tab {
    pub const ALL: [Tab; 4] = [Tab::Explore, Tab::Performance, Tab::Jobs, Tab::About];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Explore => "Explore",
            Tab::Performance => "Performance",
            Tab::Jobs => "Jobs",
            Tab::About => "About",
        }
    }
}

/// The tab labels as drawn: " 1 Explore " etc., after the title.
pub const TITLE: &str = " prism ";

pub fn tab_label(i: usize, tab: Tab) -> String {
    format!(" {} {} ", i + 1, tab.title())
}

/// Which tab is drawn at `column` of the tab bar.
pub fn tab_at(column: u16) -> Option<Tab> {
    let mut x = TITLE.len() as u16;
    for (i, tab) in Tab::ALL.into_iter().enumerate() {
        let width = tab_label(i, tab).len() as u16;
        if column >= x && column < x + width {
            return Some(tab);
        }
        x += width;
    }
    None
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Panel {
    Users,
    History,
    Ranked,
    /// A comparison column: the index of its pane (0 the Oracle, 1 the Prism, then extras).
    Pane(usize),
    Performance,
    Jobs,
    About,
}

impl Panel {
    /// The list panels; they and the comparison columns shown take focus, in this order.
    pub const LISTS: [Panel; 3] = [Panel::Users, Panel::History, Panel::Ranked];
}

pub struct Areas {
    pub tabs: Rect,
    pub hints: Rect,
    pub panels: Vec<(Panel, Rect)>,
}

impl Areas {
    pub fn get(&self, panel: Panel) -> Option<Rect> {
        self.panels.iter().find(|(p, _)| *p == panel).map(|(_, r)| *r)
    }

    pub fn at(&self, column: u16, row: u16) -> Option<(Panel, Rect)> {
        self.panels
            .iter()
            .copied()
            .find(|(_, r)| column >= r.x && column < r.x + r.width && row >= r.y && row < r.y + r.height)
    }
}

/// A terminal at least this big gets the rich layout: performance and jobs beside the explorer.
pub const WIDE: (u16, u16) = (140, 40);

/// Below this size the panels cannot show a line of their lists, so the explorer shows a "terminal
/// too small" screen instead of clipped panels.
pub const MIN: (u16, u16) = (64, 20);

/// Whether a terminal of `size` is too small for the explorer.
pub fn too_small(size: Rect) -> bool {
    size.width < MIN.0 || size.height < MIN.1
}

/// The areas with the Oracle's and the Prism's columns side by side.
pub fn areas(size: Rect, tab: Tab) -> Areas {
    areas_with(size, tab, &[0, 1])
}

/// The areas with the comparison columns of `columns` (pane indices, left to right), splitting
/// the width evenly.
pub fn areas_with(size: Rect, tab: Tab, columns: &[usize]) -> Areas {
    let [tabs, body, hints] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0), Constraint::Length(1)]).areas(size);
    let panels = match tab {
        Tab::Explore => explore(body, columns),
        Tab::Performance => vec![(Panel::Performance, body)],
        Tab::Jobs => vec![(Panel::Jobs, body)],
        Tab::About => vec![(Panel::About, body)],
    };
    Areas { tabs, hints, panels }
}

fn explore(body: Rect, columns: &[usize]) -> Vec<(Panel, Rect)> {
    let wide = body.width >= WIDE.0 && body.height + 2 >= WIDE.1;
    let rows = if wide {
        Layout::vertical([Constraint::Percentage(38), Constraint::Percentage(37), Constraint::Min(0)])
            .split(body)
    } else {
        Layout::vertical([Constraint::Percentage(45), Constraint::Min(0)]).split(body)
    };
    let users_width = if wide { 26 } else { 18 };
    let [users, history, ranked] =
        Layout::horizontal([Constraint::Length(users_width), Constraint::Percentage(45), Constraint::Min(0)])
            .areas(rows[0]);
    let halves = |r: Rect| {
        Layout::default()
            .direction(Direction::Horizontal)
            .constraints([Constraint::Percentage(50), Constraint::Percentage(50)])
            .split(r)
    };
    let share = Constraint::Ratio(1, columns.len().max(1) as u32);
    let compare = Layout::horizontal(vec![share; columns.len()]).split(rows[1]);
    let mut panels = vec![(Panel::Users, users), (Panel::History, history), (Panel::Ranked, ranked)];
    panels.extend(columns.iter().zip(compare.iter()).map(|(&pane, &rect)| (Panel::Pane(pane), rect)));
    if wide {
        let bottom = halves(rows[2]);
        panels.push((Panel::Performance, bottom[0]));
        panels.push((Panel::Jobs, bottom[1]));
    }
    panels
}

/// The rows of a list panel: inside the border, below the panel's header line (the filter for
/// users, column names for the others).
pub fn list_rows(rect: Rect) -> Rect {
    Rect {
        x: rect.x + 1,
        y: rect.y + 2,
        width: rect.width.saturating_sub(2),
        height: rect.height.saturating_sub(3),
    }
}

/// The first visible row of a list so that `selected` is on screen; stateless so that drawing and
/// mouse handling agree without sharing mutable scroll state.
pub fn list_offset(selected: usize, height: usize) -> usize {
    if height == 0 {
        return selected;
    }
    (selected + 1).saturating_sub(height)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_explore_panel_fits_at_80x24_and_wide_adds_performance_and_jobs() {
        let small = areas(Rect::new(0, 0, 80, 24), Tab::Explore);
        assert_eq!(small.panels.len(), 5);
        assert!(small.panels.iter().all(|(_, r)| r.width >= 16 && r.height >= 8), "{:?}", small.panels);
        let big = areas(Rect::new(0, 0, 160, 48), Tab::Explore);
        assert!(big.get(Panel::Performance).is_some() && big.get(Panel::Jobs).is_some());
        assert_eq!(big.at(0, 1).map(|(p, _)| p), Some(Panel::Users));
    }

    #[test]
    fn comparison_columns_share_the_width_evenly() {
        let three = areas_with(Rect::new(0, 0, 140, 40), Tab::Explore, &[0, 1, 2]);
        let widths: Vec<u16> = (0..3).map(|i| three.get(Panel::Pane(i)).unwrap().width).collect();
        assert_eq!(widths.iter().sum::<u16>(), 140);
        assert!(widths.iter().all(|&w| w == 46 || w == 47), "{widths:?}");
        // The panes shown are the ones asked for, in that order.
        let two = areas_with(Rect::new(0, 0, 80, 24), Tab::Explore, &[0, 2]);
        assert!(two.get(Panel::Pane(1)).is_none());
        assert!(two.get(Panel::Pane(0)).unwrap().x < two.get(Panel::Pane(2)).unwrap().x);
    }

    #[test]
    fn at_the_minimum_size_every_explore_panel_has_room() {
        let min = Rect::new(0, 0, MIN.0, MIN.1);
        assert!(!too_small(min) && too_small(Rect::new(0, 0, MIN.0 - 1, MIN.1)));
        let a = areas(min, Tab::Explore);
        assert!(a.panels.iter().all(|(_, r)| r.width >= 16 && r.height >= 8), "{:?}", a.panels);
    }

    #[test]
    fn tiny_terminals_do_not_underflow() {
        for (w, h) in [(1, 1), (3, 2), (10, 5)] {
            let a = areas(Rect::new(0, 0, w, h), Tab::Explore);
            for (_, r) in &a.panels {
                let rows = list_rows(*r);
                assert!(rows.width <= r.width && rows.height <= r.height);
            }
        }
        assert_eq!(list_offset(5, 0), 5);
        assert_eq!(list_offset(2, 10), 0);
        assert_eq!(list_offset(12, 10), 3);
    }
}

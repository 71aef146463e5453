//! Palettes: every colour the widgets use lives here, by role. `NO_COLOR` gives a palette of
//! modifiers only (bold, underline, reverse), so grounding classes stay distinguishable.

use anyhow::{bail, Result};
use ratatui::style::{Color, Modifier, Style};

use crate::explain::grounding::Class;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThemeName {
    Dark,
    Light,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Theme {
    pub name: ThemeName,
    pub no_color: bool,
    pub text: Style,
    pub dim: Style,
    pub title: Style,
    pub border: Style,
    pub border_focused: Style,
    pub selected: Style,
    pub tab_active: Style,
    pub key: Style,
    pub error: Style,
    pub ok: Style,
    pub warn: Style,
    pub oracle: Style,
    pub prism: Style,
    pub gauge: Style,
    pub grounded: Style,
    pub item_only: Style,
    pub history_only: Style,
    pub invented: Style,
}

impl Theme {
    /// The named built-in palette, or the colourless one when `no_color` (the `NO_COLOR`
    /// convention: any non-empty value).
    pub fn resolve(name: &str, no_color: bool) -> Result<Theme> {
        let name = match name {
            "dark" => ThemeName::Dark,
            "light" => ThemeName::Light,
            other => {
                bail!("'{other}' is an invalid built-in theme: expected \"dark\" or \"light\" in [tui] theme")
            }
        };
        Ok(Theme::build(name, no_color))
    }

    pub fn build(name: ThemeName, no_color: bool) -> Theme {
        if no_color {
            return Theme::colourless(name);
        }
        let (fg, dim, accent, select_bg) = match name {
            ThemeName::Dark => (Color::Gray, Color::DarkGray, Color::Cyan, Color::Rgb(45, 55, 72)),
            ThemeName::Light => (Color::Black, Color::Gray, Color::Blue, Color::Rgb(210, 225, 245)),
        };
        let (green, red, yellow, magenta) = match name {
            ThemeName::Dark => (Color::LightGreen, Color::LightRed, Color::Yellow, Color::LightMagenta),
            ThemeName::Light => (Color::Green, Color::Red, Color::Rgb(150, 100, 0), Color::Magenta),
        };
        let plain = Style::new().fg(fg);
        Theme {
            name,
            no_color,
            text: plain,
            dim: Style::new().fg(dim),
            title: Style::new().fg(accent).add_modifier(Modifier::BOLD),
            border: Style::new().fg(dim),
            border_focused: Style::new().fg(accent),
            selected: Style::new().bg(select_bg).add_modifier(Modifier::BOLD),
            tab_active: Style::new().fg(accent).add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            key: Style::new().fg(accent).add_modifier(Modifier::BOLD),
            error: Style::new().fg(red).add_modifier(Modifier::BOLD),
            ok: Style::new().fg(green),
            warn: Style::new().fg(yellow),
            oracle: Style::new().fg(magenta).add_modifier(Modifier::BOLD),
            prism: Style::new().fg(accent).add_modifier(Modifier::BOLD),
            gauge: Style::new().fg(accent),
            grounded: Style::new().fg(green).add_modifier(Modifier::BOLD),
            item_only: Style::new().fg(yellow),
            history_only: Style::new().fg(accent),
            invented: Style::new().fg(red).add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
        }
    }

    fn colourless(name: ThemeName) -> Theme {
        let plain = Style::new();
        let bold = Style::new().add_modifier(Modifier::BOLD);
        Theme {
            name,
            no_color: true,
            text: plain,
            dim: Style::new().add_modifier(Modifier::DIM),
            title: bold,
            border: plain,
            border_focused: bold,
            selected: Style::new().add_modifier(Modifier::REVERSED),
            tab_active: Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            key: bold,
            error: bold,
            ok: plain,
            warn: plain,
            oracle: bold,
            prism: bold,
            gauge: plain,
            grounded: bold,
            item_only: Style::new().add_modifier(Modifier::ITALIC),
            history_only: Style::new().add_modifier(Modifier::ITALIC),
            invented: Style::new().add_modifier(Modifier::UNDERLINED | Modifier::BOLD),
        }
    }

    pub fn toggled(&self) -> Theme {
        let next = match self.name {
            ThemeName::Dark => ThemeName::Light,
            ThemeName::Light => ThemeName::Dark,
        };
        Theme::build(next, self.no_color)
    }

    pub fn mention(&self, class: Class) -> Style {
        match class {
            Class::Grounded => self.grounded,
            Class::ItemOnly => self.item_only,
            Class::HistoryOnly => self.history_only,
            Class::Invented => self.invented,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_theme_is_named() {
        let err = Theme::resolve("solarized", false).unwrap_err().to_string();
        assert!(err.contains("'solarized' is an invalid built-in theme"), "{err}");
    }

    #[test]
    fn no_color_uses_no_colours_but_keeps_classes_apart() {
        let theme = Theme::resolve("dark", true).unwrap();
        let styles =
            [theme.text, theme.selected, theme.grounded, theme.invented, theme.error, theme.item_only];
        assert!(styles.iter().all(|s| s.fg.is_none() && s.bg.is_none()));
        assert_ne!(theme.grounded, theme.invented);
        assert_ne!(theme.grounded, theme.text);
        assert!(theme.toggled().no_color);
    }
}

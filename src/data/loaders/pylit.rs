//! A parser for the Python literal syntax (`repr` of dicts, lists, tuples, strings, numbers,
//! `True`/`False`/`None`) that the 2014 Amazon metadata dumps use instead of JSON. Produces
//! `serde_json::Value` so the loaders treat both dumps alike. Not an evaluator: anything else
//! (names, calls, sets, bytes) is an error.

use serde_json::{Map, Number, Value};

/// Parses one Python literal; the error says what was expected at which byte.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut p = Parser { s: text.as_bytes(), text, pos: 0 };
    let value = p.value(0)?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(p.err("end of input"));
    }
    Ok(value)
}

/// Nesting beyond this is rejected rather than risking the stack on hostile input.
const MAX_DEPTH: usize = 128;

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, expected: &str) -> String {
        match self.text[self.pos..].chars().next() {
            Some(c) => format!("expected {expected} at byte {}, found {c:?}", self.pos + 1),
            None => format!("expected {expected} at byte {}, found the end of the line", self.pos + 1),
        }
    }

    fn ws(&mut self) {
        while self.s.get(self.pos).is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.ws();
        if self.s.get(self.pos) == Some(&byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(format!("nesting deeper than {MAX_DEPTH} at byte {}", self.pos + 1));
        }
        self.ws();
        match self.s.get(self.pos) {
            Some(b'{') => {
                self.pos += 1;
                let mut map = Map::new();
                while !self.eat(b'}') {
                    let key = match self.value(depth + 1)? {
                        Value::String(s) => s,
                        Value::Number(n) => n.to_string(),
                        _ => return Err(self.err("a string or number key")),
                    };
                    if !self.eat(b':') {
                        return Err(self.err("':'"));
                    }
                    map.insert(key, self.value(depth + 1)?);
                    if !self.eat(b',') && !self.peek_is(b'}') {
                        return Err(self.err("',' or '}'"));
                    }
                }
                Ok(Value::Object(map))
            }
            Some(&open @ (b'[' | b'(')) => {
                self.pos += 1;
                let close = if open == b'[' { b']' } else { b')' };
                let mut items = Vec::new();
                while !self.eat(close) {
                    items.push(self.value(depth + 1)?);
                    if !self.eat(b',') && !self.peek_is(close) {
                        return Err(self.err(if close == b']' { "',' or ']'" } else { "',' or ')'" }));
                    }
                }
                Ok(Value::Array(items))
            }
            Some(&quote @ (b'\'' | b'"')) => self.string(quote).map(Value::String),
            Some(b) if b.is_ascii_digit() || *b == b'-' || *b == b'+' || *b == b'.' => self.number(),
            _ => {
                for (word, value) in
                    [("True", Value::Bool(true)), ("False", Value::Bool(false)), ("None", Value::Null)]
                {
                    if self.s[self.pos..].starts_with(word.as_bytes()) {
                        self.pos += word.len();
                        return Ok(value);
                    }
                }
                Err(self.err("a value"))
            }
        }
    }

    fn peek_is(&mut self, byte: u8) -> bool {
        self.ws();
        self.s.get(self.pos) == Some(&byte)
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.pos;
        while self.s.get(self.pos).is_some_and(|b| b.is_ascii_alphanumeric() || b"+-.".contains(b)) {
            self.pos += 1;
        }
        let token = &self.text[start..self.pos];
        if let Ok(i) = token.parse::<i64>() {
            return Ok(Value::Number(i.into()));
        }
        match token.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Ok(Value::Number(n)),
            None => {
                self.pos = start;
                Err(self.err("a number"))
            }
        }
    }

    fn hex(&mut self, digits: usize) -> Result<char, String> {
        let code = self
            .text
            .get(self.pos..self.pos + digits)
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .and_then(char::from_u32)
            .ok_or_else(|| self.err(&format!("{digits} hex digits of an escape")))?;
        self.pos += digits;
        Ok(code)
    }

    fn string(&mut self, quote: u8) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let run = self.pos;
            while self.s.get(self.pos).is_some_and(|&b| b != quote && b != b'\\') {
                self.pos += 1;
            }
            out.push_str(&self.text[run..self.pos]);
            match self.s.get(self.pos) {
                None => return Err(self.err("a closing quote")),
                Some(&b) if b == quote => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(_) => {
                    self.pos += 1;
                    let Some(c) = self.text[self.pos..].chars().next() else {
                        return Err(self.err("an escaped character"));
                    };
                    self.pos += c.len_utf8();
                    match c {
                        'n' => out.push('\n'),
                        't' => out.push('\t'),
                        'r' => out.push('\r'),
                        '0' => out.push('\0'),
                        'x' => out.push(self.hex(2)?),
                        'u' => out.push(self.hex(4)?),
                        'U' => out.push(self.hex(8)?),
                        '\\' | '\'' | '"' => out.push(c),
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn amazon_2014_metadata_line() {
        let line = r#"{'asin': '0000031852', 'title': 'Girls Ballet Tutu Zebra Hot Pink', 'price': 3.17, 'salesRank': {'Toys & Games': 211836}, 'brand': 'Coxlists', 'categories': [['Sports & Outdoors', 'Other Sports', 'Dance']], 'related': {'also_bought': ('B00JHONN1S',)}, 'gift': True, 'x': None, 'q': "Rock 'n' Roll \xe9\n"}"#;
        assert_eq!(
            parse(line).unwrap(),
            json!({"asin": "0000031852", "title": "Girls Ballet Tutu Zebra Hot Pink", "price": 3.17,
                   "salesRank": {"Toys & Games": 211836}, "brand": "Coxlists",
                   "categories": [["Sports & Outdoors", "Other Sports", "Dance"]],
                   "related": {"also_bought": ["B00JHONN1S"]}, "gift": true, "x": null, "q": "Rock 'n' Roll é\n"})
        );
    }

    #[test]
    fn errors_say_where() {
        assert!(parse("{'a': 1").unwrap_err().contains("found the end of the line"));
        assert!(parse("{'a' 1}").unwrap_err().contains("':'"));
        assert!(parse("{'a': foo}").unwrap_err().contains("byte 7"));
        assert!(parse("'unterminated").is_err());
        assert!(parse("[1, 2] extra").unwrap_err().contains("end of input"));
        assert!(parse(&"[".repeat(10_000)).unwrap_err().contains("nesting"));
        assert!(parse("'\\x4'").is_err());
    }
}

//! A YAML document as a tree whose every node knows its line and column.
//!
//! Built from `saphyr-parser` events so that validation can point at the exact place of every
//! problem. Supports anchors, aliases and `<<` merge keys (LiteLLM configs use them). Pure: parses a
//! string, never reads files.

use saphyr_parser::{Event, Parser, ScalarStyle};
use std::collections::BTreeMap;

/// 1-based line, 1-based column.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    /// A scalar with its source text; `quoted` scalars are always strings.
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    /// Keys in file order (duplicates are reported by the validator).
    Map(Vec<(Node, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        match &self.value {
            Value::Null => true,
            Value::Scalar {
                text,
                quoted: false,
            } => matches!(text.as_str(), "~" | "null" | "Null" | "NULL" | ""),
            _ => false,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// YAML 1.2 core-schema booleans (plus the common YAML 1.1 spellings PyYAML accepts).
    pub fn as_bool(&self) -> Option<bool> {
        match &self.value {
            Value::Scalar {
                text,
                quoted: false,
            } => match text.as_str() {
                "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
                "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
                    Some(false)
                }
                _ => None,
            },
            _ => None,
        }
    }

    pub fn kind_name(&self) -> &'static str {
        if self.is_null() {
            return "null";
        }
        match &self.value {
            Value::Null => "null",
            Value::Scalar { quoted: true, .. } => "a string",
            Value::Scalar { text, .. } => {
                if self.as_bool().is_some() {
                    "a boolean"
                } else if text.parse::<f64>().is_ok() {
                    "a number"
                } else {
                    "a string"
                }
            }
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// A JSON value for pass-through parameters (numbers and booleans typed as PyYAML would).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        if self.is_null() {
            return J::Null;
        }
        match &self.value {
            Value::Null => J::Null,
            Value::Scalar { text, quoted } => {
                if !quoted {
                    if let Some(b) = self.as_bool() {
                        return J::Bool(b);
                    }
                    if let Ok(i) = text.parse::<i64>() {
                        return J::from(i);
                    }
                    if let Ok(f) = text.parse::<f64>() {
                        if f.is_finite() {
                            return J::from(f);
                        }
                    }
                }
                J::String(text.clone())
            }
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => {
                let mut m = serde_json::Map::new();
                for (k, v) in entries {
                    m.insert(k.as_str().unwrap_or_default().to_string(), v.to_json());
                }
                J::Object(m)
            }
        }
    }
}

enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
    },
}

/// Parses the first document of `text`. An empty file is a null document.
pub fn parse(text: &str) -> Result<Node, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: BTreeMap<usize, Node> = BTreeMap::new();
    let mut root: Option<Node> = None;
    // Bounded: the parser produces a finite event stream for a finite input.
    loop {
        let next = parser.next_event();
        let Some(item) = next else { break };
        let (event, span) = item.map_err(|e| YamlError {
            pos: Pos {
                line: e.marker().line() as u32,
                col: e.marker().col() as u32 + 1,
            },
            message: e.info().to_string(),
        })?;
        let pos = Pos {
            line: span.start.line() as u32,
            col: span.start.col() as u32 + 1,
        };
        let complete: Option<(Node, usize)> = match event {
            Event::StreamStart | Event::DocumentStart(_) | Event::Nothing => None,
            Event::DocumentEnd | Event::StreamEnd => {
                if root.is_some() {
                    break;
                }
                None
            }
            Event::Scalar(text, style, anchor, _tag) => {
                let quoted = !matches!(style, ScalarStyle::Plain);
                Some((
                    Node {
                        value: Value::Scalar {
                            text: text.into_owned(),
                            quoted,
                        },
                        pos,
                    },
                    anchor,
                ))
            }
            Event::Alias(id) => match anchors.get(&id) {
                Some(n) => Some((
                    Node {
                        value: n.value.clone(),
                        pos,
                    },
                    0,
                )),
                None => {
                    return Err(YamlError {
                        pos,
                        message: "alias to an unknown anchor".into(),
                    })
                }
            },
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Seq {
                    pos,
                    anchor,
                    items: Vec::new(),
                });
                None
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map {
                    pos,
                    anchor,
                    entries: Vec::new(),
                    pending_key: None,
                });
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq { pos, anchor, items }) => Some((
                    Node {
                        value: Value::Seq(items),
                        pos,
                    },
                    anchor,
                )),
                _ => {
                    return Err(YamlError {
                        pos,
                        message: "unbalanced sequence".into(),
                    })
                }
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map {
                    pos,
                    anchor,
                    entries,
                    ..
                }) => Some((
                    Node {
                        value: Value::Map(apply_merge_keys(entries)),
                        pos,
                    },
                    anchor,
                )),
                _ => {
                    return Err(YamlError {
                        pos,
                        message: "unbalanced mapping".into(),
                    })
                }
            },
        };
        if let Some((node, anchor)) = complete {
            if anchor != 0 {
                anchors.insert(anchor, node.clone());
            }
            match stack.last_mut() {
                None => root = Some(node),
                Some(Frame::Seq { items, .. }) => items.push(node),
                Some(Frame::Map {
                    entries,
                    pending_key,
                    ..
                }) => match pending_key.take() {
                    None => *pending_key = Some(node),
                    Some(k) => entries.push((k, node)),
                },
            }
        }
    }
    Ok(root.unwrap_or(Node {
        value: Value::Null,
        pos: Pos { line: 1, col: 1 },
    }))
}

/// `<<: *base` and `<<: [*a, *b]`: keys from the merged mappings that the mapping does not set.
fn apply_merge_keys(entries: Vec<(Node, Node)>) -> Vec<(Node, Node)> {
    if !entries.iter().any(|(k, _)| is_merge_key(k)) {
        return entries;
    }
    let mut own: Vec<(Node, Node)> = Vec::new();
    let mut merged: Vec<(Node, Node)> = Vec::new();
    for (k, v) in entries {
        if is_merge_key(&k) {
            let sources: Vec<Node> = match v.value {
                Value::Seq(items) => items,
                _ => vec![v],
            };
            for src in sources {
                if let Value::Map(m) = src.value {
                    for (mk, mv) in m {
                        if !merged.iter().any(|(x, _)| x.as_str() == mk.as_str()) {
                            merged.push((mk, mv));
                        }
                    }
                }
            }
        } else {
            own.push((k, v));
        }
    }
    for (mk, mv) in merged {
        if !own.iter().any(|(x, _)| x.as_str() == mk.as_str()) {
            own.push((mk, mv));
        }
    }
    own
}

fn is_merge_key(k: &Node) -> bool {
    matches!(&k.value, Value::Scalar { text, quoted: false } if text == "<<")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let n = parse("a:\n  b: 1\n  c: [x, \"y\"]\n").unwrap();
        let m = n.as_map().unwrap();
        assert_eq!(m[0].0.pos, Pos { line: 1, col: 1 });
        let inner = m[0].1.as_map().unwrap();
        assert_eq!(inner[0].0.pos, Pos { line: 2, col: 3 });
        assert_eq!(
            inner[1].1.as_seq().unwrap()[1].value,
            Value::Scalar {
                text: "y".into(),
                quoted: true
            }
        );
    }

    #[test]
    fn anchors_and_merge_keys() {
        let n = parse("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n").unwrap();
        let d = &n.as_map().unwrap()[1].1;
        let j = d.to_json();
        assert_eq!(j, serde_json::json!({"y": 3, "x": 1}));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.pos.line >= 1, "{e:?}");
    }

    #[test]
    fn empty_document_is_null() {
        assert!(parse("").unwrap().is_null());
        assert!(parse("# only a comment\n").unwrap().is_null());
    }
}

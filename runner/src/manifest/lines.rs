//! Maps field paths of a YAML document to the line they are written on, so problems can be
//! reported as `file:line`.

use std::collections::HashMap;

use stampede_crds::path::Segment;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// For each document of a YAML stream, the 1-based line of every node, by path.
#[derive(Debug, Default)]
pub struct LineIndex {
    documents: Vec<HashMap<Vec<Segment>, usize>>,
}

impl LineIndex {
    /// Indexes `text`; a stream that does not parse yields an empty index (the YAML error is
    /// reported separately by the deserializer).
    pub fn build(text: &str) -> Self {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, true).is_err() {
            return LineIndex::default();
        }
        LineIndex {
            documents: builder.documents,
        }
    }

    /// The line of `path` in document `document`, or of its nearest ancestor that is written.
    pub fn line(&self, document: usize, path: &[Segment]) -> Option<usize> {
        let lines = self.documents.get(document)?;
        (0..=path.len())
            .rev()
            .find_map(|len| lines.get(&path[..len]).copied())
    }
}

#[derive(Debug)]
enum Frame {
    Mapping { pending_key: Option<String> },
    Sequence { next: usize },
}

#[derive(Debug, Default)]
struct Builder {
    documents: Vec<HashMap<Vec<Segment>, usize>>,
    stack: Vec<Frame>,
    path: Vec<Segment>,
}

impl Builder {
    /// Called for every node that is a value; returns the path it sits at.
    fn enter_value(&mut self) -> Option<Vec<Segment>> {
        match self.stack.last_mut() {
            None => Some(Vec::new()),
            Some(Frame::Sequence { next }) => {
                let mut path = self.path.clone();
                path.push(Segment::Index(*next));
                *next += 1;
                Some(path)
            }
            Some(Frame::Mapping { pending_key }) => {
                let key = pending_key.take()?;
                let mut path = self.path.clone();
                path.push(Segment::Key(key));
                Some(path)
            }
        }
    }

    fn is_key_position(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Frame::Mapping { pending_key: None })
        )
    }

    fn record(&mut self, path: &[Segment], line: usize) {
        if let Some(lines) = self.documents.last_mut() {
            lines.entry(path.to_vec()).or_insert(line);
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        let line = mark.line();
        match event {
            Event::DocumentStart => {
                self.documents.push(HashMap::new());
                self.stack.clear();
                self.path.clear();
            }
            Event::Scalar(value, ..) => {
                if self.is_key_position() {
                    let mut path = self.path.clone();
                    path.push(Segment::Key(value.clone()));
                    self.record(&path, line);
                    if let Some(Frame::Mapping { pending_key }) = self.stack.last_mut() {
                        *pending_key = Some(value);
                    }
                } else if let Some(path) = self.enter_value() {
                    self.record(&path, line);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_mapping = matches!(event, Event::MappingStart(..));
                if self.is_key_position() {
                    // A complex key: index nothing below it, but keep the structure balanced.
                    self.stack.push(if is_mapping {
                        Frame::Mapping { pending_key: None }
                    } else {
                        Frame::Sequence { next: 0 }
                    });
                    self.path.push(Segment::Key(String::new()));
                    return;
                }
                let path = self.enter_value().unwrap_or_default();
                self.record(&path, line);
                self.path = path;
                self.stack.push(if is_mapping {
                    Frame::Mapping { pending_key: None }
                } else {
                    Frame::Sequence { next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.path.pop();
            }
            Event::Alias(_) => {
                if let Some(path) = self.enter_value() {
                    self.record(&path, line);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Segment {
        Segment::Key(k.to_string())
    }

    #[test]
    fn finds_lines_of_nested_fields_across_documents() {
        let text = "a: 1\n---\nspec:\n  scenarios:\n    spike:\n      stages:\n        - {duration: 20s, target: 1}\n        - duration: 3x\n          target: 2\n";
        let index = LineIndex::build(text);
        assert_eq!(index.line(0, &[key("a")]), Some(1));
        let stage = [
            key("spec"),
            key("scenarios"),
            key("spike"),
            key("stages"),
            Segment::Index(1),
            key("duration"),
        ];
        assert_eq!(index.line(1, &stage), Some(8));
        let first = [
            key("spec"),
            key("scenarios"),
            key("spike"),
            key("stages"),
            Segment::Index(0),
            key("target"),
        ];
        assert_eq!(index.line(1, &first), Some(7));
        // A missing field points at its nearest written ancestor.
        let missing = [
            key("spec"),
            key("scenarios"),
            key("spike"),
            key("gracefulStop"),
        ];
        assert_eq!(index.line(1, &missing), Some(5));
    }
}

//! A local stand-in for a Cloudflare Vectorize index, so that the local stack keeps vectors where
//! production does (outside D1, behind subrequests) and D1 holds the same rows in both: vectors in
//! namespaces (one per business), each with the metadata the index filters on (`source_id`,
//! `page_id`, `subject`), upserted, fetched and deleted by id, and queried by cosine with a
//! `source_id $in` filter and an optional `subject` one, as the binding's `upsert`, `getByIds`,
//! `deleteByIds` and `query` do. A vector written without a subject is not found by a query that
//! asks for subjects, as Vectorize does not find a vector written before its metadata index.
//!
//! Vectors are unit length (the embedder's), so the cosine is a dot product, computed over every
//! vector of the namespace that passes the filter: exact where Vectorize is approximate, and fast
//! enough at a hundred thousand vectors (a few milliseconds).
//!
//! With a data directory, every change is appended to `vectors.log` and replayed at start (the
//! log is rewritten with the live vectors only, so it does not grow for ever); without one, the
//! index lives as long as the process.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::DIMENSIONS;

/// What the index filters on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metadata {
    pub source_id: String,
    pub page_id: String,
    /// The subject's token; empty when the vector was written without one.
    pub subject: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Vector {
    pub id: String,
    pub namespace: String,
    pub values: Vec<f32>,
    pub metadata: Metadata,
}

struct Stored {
    values: Vec<f32>,
    metadata: Metadata,
}

#[derive(Default)]
struct Namespaces(HashMap<String, HashMap<String, Stored>>);

pub struct Index {
    namespaces: Mutex<Namespaces>,
    log: Option<Mutex<BufWriter<File>>>,
}

/// A vector written before subjects (read, never written now).
const UPSERT_WITHOUT_SUBJECT: u8 = 1;
const DELETE: u8 = 2;
const UPSERT: u8 = 3;

impl Index {
    /// An index kept in memory only.
    pub fn in_memory() -> Self {
        Self {
            namespaces: Mutex::new(Namespaces::default()),
            log: None,
        }
    }

    /// The index kept in `dir`: what its log holds, the log rewritten with the live vectors only.
    pub fn open(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let path = dir.join("vectors.log");
        let mut namespaces = Namespaces::default();
        if path.exists() {
            replay(&path, &mut namespaces)?;
        }
        let fresh = dir.join("vectors.log.new");
        {
            let mut writer = BufWriter::new(File::create(&fresh)?);
            for (namespace, vectors) in &namespaces.0 {
                for (id, stored) in vectors {
                    write_upsert(&mut writer, namespace, id, &stored.values, &stored.metadata)?;
                }
            }
            writer.flush()?;
        }
        fs::rename(&fresh, &path)?;
        let log = OpenOptions::new().append(true).open(&path)?;
        Ok(Self {
            namespaces: Mutex::new(namespaces),
            log: Some(Mutex::new(BufWriter::new(log))),
        })
    }

    /// Where the log of an index kept in `dir` is.
    pub fn log_path(dir: &Path) -> PathBuf {
        dir.join("vectors.log")
    }

    pub fn upsert(&self, vectors: Vec<Vector>) -> io::Result<usize> {
        let count = vectors.len();
        let mut namespaces = lock(&self.namespaces);
        if let Some(log) = &self.log {
            let mut log = lock(log);
            for vector in &vectors {
                write_upsert(
                    &mut *log,
                    &vector.namespace,
                    &vector.id,
                    &vector.values,
                    &vector.metadata,
                )?;
            }
            log.flush()?;
        }
        for vector in vectors {
            namespaces.0.entry(vector.namespace).or_default().insert(
                vector.id,
                Stored {
                    values: vector.values,
                    metadata: vector.metadata,
                },
            );
        }
        Ok(count)
    }

    /// Deletes `ids` from every namespace (Vectorize deletes by id across namespaces).
    pub fn delete(&self, ids: &[String]) -> io::Result<usize> {
        let mut namespaces = lock(&self.namespaces);
        if let Some(log) = &self.log {
            let mut log = lock(log);
            for id in ids {
                log.write_all(&[DELETE])?;
                write_text(&mut *log, id)?;
            }
            log.flush()?;
        }
        let mut deleted = 0;
        for vectors in namespaces.0.values_mut() {
            for id in ids {
                deleted += usize::from(vectors.remove(id).is_some());
            }
        }
        Ok(deleted)
    }

    /// The ids among `ids` the index holds.
    pub fn existing(&self, ids: &[String]) -> Vec<String> {
        let namespaces = lock(&self.namespaces);
        ids.iter()
            .filter(|id| namespaces.0.values().any(|vectors| vectors.contains_key(*id)))
            .cloned()
            .collect()
    }

    /// The vectors among `ids` the index holds, whole.
    pub fn vectors(&self, ids: &[String]) -> Vec<Vector> {
        let namespaces = lock(&self.namespaces);
        ids.iter()
            .filter_map(|id| {
                namespaces.0.iter().find_map(|(namespace, vectors)| {
                    vectors.get(id).map(|stored| Vector {
                        id: id.clone(),
                        namespace: namespace.clone(),
                        values: stored.values.clone(),
                        metadata: stored.metadata.clone(),
                    })
                })
            })
            .collect()
    }

    /// The `top_k` vectors of `namespace` whose `source_id` is one of `sources`, and whose
    /// `subject` is one of `subjects` when they are given, nearest to `query`: (id, cosine), best
    /// first.
    pub fn query(
        &self,
        namespace: &str,
        query: &[f32],
        sources: &[String],
        subjects: Option<&[String]>,
        top_k: usize,
    ) -> Vec<(String, f32)> {
        let namespaces = lock(&self.namespaces);
        let Some(vectors) = namespaces.0.get(namespace) else {
            return Vec::new();
        };
        let mut scored: Vec<(&String, f32)> = vectors
            .iter()
            .filter(|(_, stored)| sources.contains(&stored.metadata.source_id))
            .filter(|(_, stored)| subjects.is_none_or(|subjects| subjects.contains(&stored.metadata.subject)))
            .map(|(id, stored)| (id, dot(query, &stored.values)))
            .collect();
        let k = top_k.min(scored.len());
        if k == 0 {
            return Vec::new();
        }
        scored.select_nth_unstable_by(k - 1, |a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        scored.truncate(k);
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        scored
            .into_iter()
            .map(|(id, score)| (id.clone(), score))
            .collect()
    }

    /// Vectors held, over every namespace.
    pub fn len(&self) -> usize {
        lock(&self.namespaces).0.values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock means another request panicked mid-change; the map itself is still whole.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn write_text(out: &mut impl Write, text: &str) -> io::Result<()> {
    let length = u32::try_from(text.len()).map_err(|_| io::Error::other("a text over 4 GiB"))?;
    out.write_all(&length.to_le_bytes())?;
    out.write_all(text.as_bytes())
}

fn write_upsert(
    out: &mut impl Write,
    namespace: &str,
    id: &str,
    values: &[f32],
    metadata: &Metadata,
) -> io::Result<()> {
    out.write_all(&[UPSERT])?;
    for text in [
        namespace,
        id,
        &metadata.source_id,
        &metadata.page_id,
        &metadata.subject,
    ] {
        write_text(out, text)?;
    }
    for value in values {
        out.write_all(&value.to_le_bytes())?;
    }
    Ok(())
}

fn read_text(input: &mut impl Read) -> io::Result<String> {
    let mut length = [0u8; 4];
    input.read_exact(&mut length)?;
    let mut bytes = vec![0u8; u32::from_le_bytes(length) as usize];
    input.read_exact(&mut bytes)?;
    String::from_utf8(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "a text that is not UTF-8"))
}

/// Applies the log at `path`; a record cut short by a crash ends the replay.
fn replay(path: &Path, namespaces: &mut Namespaces) -> io::Result<()> {
    let mut input = BufReader::new(File::open(path)?);
    let mut op = [0u8; 1];
    loop {
        match input.read_exact(&mut op) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(error) => return Err(error),
        }
        let applied = match op[0] {
            UPSERT | UPSERT_WITHOUT_SUBJECT => {
                read_upsert(&mut input, op[0] == UPSERT).map(|(namespace, id, stored)| {
                    namespaces.0.entry(namespace).or_default().insert(id, stored);
                })
            }
            DELETE => read_text(&mut input).map(|id| {
                for vectors in namespaces.0.values_mut() {
                    vectors.remove(&id);
                }
            }),
            other => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("vectors.log: unknown record {other}"),
                ));
            }
        };
        match applied {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(error) => return Err(error),
        }
    }
}

fn read_upsert(input: &mut impl Read, with_subject: bool) -> io::Result<(String, String, Stored)> {
    let namespace = read_text(input)?;
    let id = read_text(input)?;
    let source_id = read_text(input)?;
    let page_id = read_text(input)?;
    let subject = if with_subject {
        read_text(input)?
    } else {
        String::new()
    };
    let mut values = Vec::with_capacity(DIMENSIONS);
    let mut value = [0u8; 4];
    for _ in 0..DIMENSIONS {
        input.read_exact(&mut value)?;
        values.push(f32::from_le_bytes(value));
    }
    Ok((
        namespace,
        id,
        Stored {
            values,
            metadata: Metadata {
                source_id,
                page_id,
                subject,
            },
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(axis: usize) -> Vec<f32> {
        let mut values = vec![0.0; DIMENSIONS];
        values[axis] = 1.0;
        values
    }

    fn vector(id: &str, namespace: &str, source: &str, values: Vec<f32>) -> Vector {
        Vector {
            id: id.to_owned(),
            namespace: namespace.to_owned(),
            values,
            metadata: Metadata {
                source_id: source.to_owned(),
                page_id: "p".to_owned(),
                subject: "general".to_owned(),
            },
        }
    }

    #[test]
    fn a_query_finds_the_nearest_of_its_namespace_and_sources_only() {
        let index = Index::in_memory();
        let mut near = unit(0);
        near[1] = 0.1;
        index
            .upsert(vec![
                vector("a", "b1", "s1", unit(0)),
                vector("b", "b1", "s1", near),
                vector("c", "b1", "s2", unit(0)),
                vector("d", "b2", "s1", unit(0)),
                vector("e", "b1", "s1", unit(1)),
            ])
            .ok();
        let found = index.query("b1", &unit(0), &["s1".to_owned()], None, 2);
        assert_eq!(
            found.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
            vec!["a", "b"]
        );
        assert!(
            index
                .query("b3", &unit(0), &["s1".to_owned()], None, 2)
                .is_empty()
        );
    }

    #[test]
    fn deletions_and_upserts_survive_a_restart_through_the_log() {
        let dir = std::env::temp_dir().join(format!("vectors-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        {
            let index = Index::open(&dir).unwrap_or_else(|e| panic!("{e}"));
            index
                .upsert(vec![
                    vector("a", "b1", "s1", unit(0)),
                    vector("b", "b1", "s1", unit(1)),
                ])
                .ok();
            index.delete(&["a".to_owned()]).ok();
            index.upsert(vec![vector("b", "b1", "s1", unit(2))]).ok();
        }
        let reopened = Index::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(reopened.len(), 1);
        assert_eq!(
            reopened.existing(&["a".to_owned(), "b".to_owned()]),
            vec!["b".to_owned()]
        );
        let found = reopened.query(
            "b1",
            &unit(2),
            &["s1".to_owned()],
            Some(&["general".to_owned()]),
            1,
        );
        assert!(
            found
                .first()
                .is_some_and(|(id, score)| id == "b" && (*score - 1.0).abs() < 1e-6)
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_query_asking_for_subjects_finds_those_only_and_never_a_vector_written_without_one() {
        let index = Index::in_memory();
        let mut bob = vector("bob", "b1", "s1", unit(0));
        bob.metadata.subject = "b0b".to_owned();
        let mut ann = vector("ann", "b1", "s1", unit(1));
        ann.metadata.subject = "a22".to_owned();
        let mut before = vector("before", "b1", "s1", unit(0));
        before.metadata.subject = String::new();
        index
            .upsert(vec![bob, ann, before, vector("plan", "b1", "s1", unit(2))])
            .ok();
        let ids = |subjects: Option<&[String]>| -> Vec<String> {
            index
                .query("b1", &unit(0), &["s1".to_owned()], subjects, 10)
                .into_iter()
                .map(|(id, _)| id)
                .collect()
        };
        assert_eq!(
            ids(Some(&["a22".to_owned()])),
            ["ann"],
            "Bob's is nearer, and never a candidate"
        );
        assert_eq!(ids(Some(&["general".to_owned()])), ["plan"]);
        assert_eq!(
            ids(None).len(),
            4,
            "without a subject filter, every vector of the sources"
        );
        let whole = index.vectors(&["ann".to_owned(), "nowhere".to_owned()]);
        assert_eq!(whole.len(), 1);
        assert_eq!(
            (whole[0].metadata.subject.as_str(), whole[0].values[1]),
            ("a22", 1.0)
        );
    }

    #[test]
    fn a_log_written_before_subjects_is_read_with_vectors_of_no_subject() {
        let dir = std::env::temp_dir().join(format!("vectors-old-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let mut old = Vec::new();
        old.push(UPSERT_WITHOUT_SUBJECT);
        for text in ["b1", "a", "s1", "p"] {
            write_text(&mut old, text).unwrap_or_else(|e| panic!("{e}"));
        }
        for value in unit(0) {
            old.extend(value.to_le_bytes());
        }
        fs::write(Index::log_path(&dir), &old).unwrap_or_else(|e| panic!("{e}"));
        let reopened = Index::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            reopened.query("b1", &unit(0), &["s1".to_owned()], None, 1).len(),
            1
        );
        assert!(
            reopened
                .query(
                    "b1",
                    &unit(0),
                    &["s1".to_owned()],
                    Some(&["general".to_owned()]),
                    1
                )
                .is_empty()
        );
        drop(reopened);
        let again = Index::open(&dir).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            again.vectors(&["a".to_owned()])[0].metadata.subject,
            "",
            "rewritten, still without one"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}

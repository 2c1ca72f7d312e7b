//! [`StoreReader`]: a read-only view of a [`super::SqliteStore`] file from another process,
//! such as a lookup index that follows the signer's events as they are stored.
//!
//! Rows are numbered in the order events were stored; a reader remembers the last row it
//! took and asks for the events since. The schema stays the store's business.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, params};

use super::StoreError;

/// A read-only connection to a signer's store file; see the module.
#[derive(Debug)]
pub struct StoreReader {
    conn: Connection,
}

/// One stored event, with its row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRow {
    /// The row: rows grow in the order events were stored.
    pub row: i64,
    /// The event as JSON; `None` when the row does not hold text (a damaged store).
    pub json: Option<String>,
}

impl StoreReader {
    /// Opens the store at `path` read-only (it must exist), waiting up to 10 s for the
    /// signer's writes.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        Ok(Self { conn })
    }

    /// The row of the newest event (0 for an empty store).
    pub fn last_row(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT IFNULL(MAX(rowid), 0) FROM events", [], |r| r.get(0))?)
    }

    /// Up to `limit` events stored after row `after`, in the order they were stored.
    pub fn events_since(&self, after: i64, limit: usize) -> Result<Vec<StoredRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT rowid, json FROM events WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![after, limit], |r| {
            Ok(StoredRow {
                row: r.get(0)?,
                json: r.get_ref(1)?.as_str().ok().map(str::to_owned),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Like [`StoreReader::events_since`], but stops once the rows taken hold `max_bytes`
    /// bytes of JSON (at least one row is taken): rows are read one at a time, so large
    /// events never make the answer hold more than `max_bytes` plus one event.
    pub fn events_since_capped(
        &self,
        after: i64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<StoredRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT rowid, json FROM events WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = stmt.query(params![after, limit])?;
        let (mut taken, mut bytes) = (Vec::new(), 0usize);
        while bytes < max_bytes || taken.is_empty() {
            let Some(r) = rows.next()? else { break };
            let json = r.get_ref(1)?.as_str().ok().map(str::to_owned);
            bytes += json.as_ref().map_or(0, String::len);
            taken.push(StoredRow {
                row: r.get(0)?,
                json,
            });
        }
        Ok(taken)
    }
}

#[cfg(test)]
mod tests {
    use provenance::clock::FixedClock;
    use provenance::nostr::prelude::Timestamp;
    use provenance::{Keys, Model, Output, Record};

    use super::*;
    use crate::store::{RequestId, SqliteStore, Store};

    #[test]
    fn a_reader_takes_the_events_since_a_row_in_the_order_they_were_stored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.sqlite");
        let store = SqliteStore::open(&path).unwrap();
        let keys = Keys::generate();
        let events: Vec<_> = (0..3u64)
            .map(|n| {
                let record = Record::new(Output::from_text(&n.to_string()), Model::named("m"));
                provenance::event::sign(&record, &keys, &FixedClock(Timestamp::from_secs(n)))
                    .unwrap()
            })
            .collect();
        let reader = StoreReader::open(&path).unwrap();
        assert_eq!(reader.last_row().unwrap(), 0);
        for event in &events {
            store.put(RequestId::generate(), event).unwrap();
        }
        assert_eq!(reader.last_row().unwrap(), 3);
        let first = reader.events_since(0, 2).unwrap();
        let jsons: Vec<_> = first.iter().map(|r| r.json.clone().unwrap()).collect();
        assert_eq!(jsons, [events[0].as_json(), events[1].as_json()]);
        let rest = reader.events_since(first[1].row, 10).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].json.as_deref(), Some(events[2].as_json().as_str()));
        assert!(reader.events_since(rest[0].row, 10).unwrap().is_empty());
        assert!(StoreReader::open(&dir.path().join("absent.sqlite")).is_err());
        // Cut at the byte cap: one row reaches it; at least one row is taken.
        let len = events[0].as_json().len();
        let rows = |cap| reader.events_since_capped(0, 10, cap).unwrap().len();
        assert_eq!(rows(1), 1);
        assert_eq!(rows(len + 1), 2);
        assert_eq!(rows(usize::MAX), 3);
        assert_eq!(
            reader.events_since_capped(0, 2, usize::MAX).unwrap().len(),
            2
        );
    }
}

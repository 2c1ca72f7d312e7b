//! Writing to the index: author numbers, fingerprints pending in memory, batches, flushes
//! and counters.

use super::*;

/// Author numbers, cached (one operator signs many events).
#[derive(Default)]
pub(super) struct Authors(HashMap<[u8; 32], i64>);

impl Authors {
    pub(super) fn number(&mut self, conn: &Connection, key: &[u8; 32]) -> Result<i64, Error> {
        if let Some(&n) = self.0.get(key) {
            return Ok(n);
        }
        conn.prepare_cached("INSERT OR IGNORE INTO authors (pubkey) VALUES (?1)")?
            .execute([key.as_slice()])?;
        let n: i64 = conn
            .prepare_cached("SELECT n FROM authors WHERE pubkey = ?1")?
            .query_row([key.as_slice()], |r| r.get(0))?;
        if self.0.len() >= 4096 {
            self.0.clear();
        }
        self.0.insert(*key, n);
        Ok(n)
    }
}

/// Keys of added events not yet in the key tables, and the ids they hold.
#[derive(Default)]
pub(super) struct Pending {
    pub(super) ids: Vec<(i64, i64)>,
    pub(super) exact: Vec<(i64, i64)>,
    pub(super) normalized: Vec<(i64, i64)>,
    pub(super) fingerprints: Vec<(i64, i64)>,
    // id prefix → seq of the first pending event with it; later ones with the same prefix
    // (a collision) go to `more`, searched in full.
    pub(super) by_id: HashMap<i64, i64>,
    pub(super) more: Vec<(i64, i64)>,
}

impl Pending {
    pub(super) fn push(&mut self, seq: i64, p: &Prepared, limit: usize) {
        if self.fingerprints.capacity() == 0 {
            // Reserved once: growing by doubling would copy, and could ask for twice the
            // limit. Pages never touched cost nothing.
            self.fingerprints.reserve(limit + fingerprint::MAX_HASHES);
        }
        let key = prefix(&p.row.id);
        self.ids.push((key, seq));
        if let Some(&first) = self.by_id.get(&key) {
            if first != seq {
                self.more.push((key, seq));
            }
        } else {
            self.by_id.insert(key, seq);
        }
        self.exact.push((prefix(&p.exact), seq));
        if let Some(n) = &p.normalized {
            self.normalized.push((prefix(n), seq));
        }
        self.fingerprints
            .extend(p.fingerprints.iter().map(|h| (h.as_u64() as i64, seq)));
    }

    pub(super) fn seqs_with(&self, key: i64) -> impl Iterator<Item = i64> + '_ {
        self.by_id
            .get(&key)
            .copied()
            .into_iter()
            .chain(self.more.iter().filter(move |m| m.0 == key).map(|m| m.1))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

impl Index {
    /// Parses, verifies and indexes one event given as JSON text; it is found by lookups as
    /// soon as this returns.
    pub fn ingest_json(&mut self, json: &str) -> Result<Ingested, Error> {
        let outcome = match Prepared::verify_json(&mut self.verifier, json) {
            Ok(p) => self.in_batch(|index| index.add(p))?,
            Err(reason) => self.reject(reason)?,
        };
        self.flush_if_outside_batch()?;
        Ok(outcome)
    }

    /// Verifies and indexes one parsed event; found by lookups as soon as this returns.
    pub fn ingest_parsed(&mut self, ev: &Event) -> Result<Ingested, Error> {
        let outcome = match Prepared::verify(&mut self.verifier, ev) {
            Ok(p) => self.in_batch(|index| index.add(p))?,
            Err(reason) => self.reject(reason)?,
        };
        self.flush_if_outside_batch()?;
        Ok(outcome)
    }

    pub(super) fn flush_if_outside_batch(&mut self) -> Result<(), Error> {
        if self.batch == 0 {
            self.flush()?;
        }
        Ok(())
    }

    /// Stores a verified event, unless its id is already indexed. Its keys are written by the
    /// next [`Index::flush`] (at the latest when more than the pending limit are kept, at the
    /// end of a batch). Inside [`Index::in_batch`] for speed; alone it is its own batch.
    pub fn add(&mut self, p: Prepared) -> Result<Ingested, Error> {
        if self.batch == 0 {
            return self.in_batch(|index| index.add(p));
        }
        if self.holds_id(&p.row.id)? {
            self.delta.duplicate += 1;
            return Ok(Ingested::Duplicate);
        }
        let author = self.authors.number(&self.conn, &p.row.author)?;
        let seq = p.row.insert(&self.conn, "events", None, author)?;
        self.pending.push(seq, &p, self.pending_limit);
        self.delta.indexed += 1;
        self.newest = self.newest.max(Some(p.row.created_at));
        Ok(Ingested::Indexed)
    }

    pub(super) fn holds_id(&self, id: &[u8; 32]) -> Result<bool, Error> {
        let key = prefix(id);
        let mut stmt = self.conn.prepare_cached(
            "SELECT e.id FROM ids t JOIN events e ON e.seq = t.seq WHERE t.key = ?1",
        )?;
        let mut rows = stmt.query([key])?;
        while let Some(r) = rows.next()? {
            if blob(r, 0)? == id.as_slice() {
                return Ok(true);
            }
        }
        for seq in self.pending.seqs_with(key) {
            let stored: Vec<u8> = self
                .conn
                .prepare_cached("SELECT id FROM events WHERE seq = ?1")?
                .query_row([seq], |r| r.get(0))?;
            if stored == id.as_slice() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Counts an input that is not an event at all (an unreadable line), or an event that
    /// did not verify, as rejected.
    pub fn reject(&mut self, reason: String) -> Result<Ingested, Error> {
        if self.batch == 0 {
            return self.in_batch(|index| index.reject(reason));
        }
        self.delta.rejected += 1;
        Ok(Ingested::Rejected { reason })
    }

    /// Runs `f` inside one transaction, so that bulk ingest commits once per batch instead of
    /// once per event. Counters are written with the batch; kept keys are flushed after it
    /// when there are more than the pending limit.
    pub fn in_batch<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if self.batch > 0 {
            return f(self);
        }
        self.conn.execute_batch("BEGIN")?;
        self.batch += 1;
        let out = f(self).and_then(|v| {
            self.write_counters()?;
            Ok(v)
        });
        self.batch -= 1;
        match out {
            Ok(v) => {
                self.conn.execute_batch("COMMIT")?;
                if self.pending.fingerprints.len() >= self.pending_limit {
                    self.flush()?;
                }
                Ok(v)
            }
            Err(e) => {
                // The original error matters more than a failed rollback.
                let _ = self.conn.execute_batch("ROLLBACK");
                self.delta = Counters::default();
                // Keys of rolled-back rows must not be written: recover from the table.
                self.pending = Pending::default();
                let _ = self.recover();
                Err(e)
            }
        }
    }

    pub(super) fn write_counters(&mut self) -> Result<(), Error> {
        let d = std::mem::take(&mut self.delta);
        let mut stmt = self
            .conn
            .prepare_cached("UPDATE counters SET value = value + ?2 WHERE name = ?1")?;
        for (name, v) in [
            ("indexed", d.indexed),
            ("duplicate", d.duplicate),
            ("rejected", d.rejected),
        ] {
            if v > 0 {
                stmt.execute(params![name, v as i64])?;
            }
        }
        if let Some(newest) = self.newest {
            self.conn
                .prepare_cached(
                    "UPDATE state SET value = MAX(value, ?1) WHERE name = 'newest_created_at'",
                )?
                .execute([newest])?;
        }
        Ok(())
    }

    /// Writes the kept keys of added events into the key tables, sorted, and records that
    /// every stored event has its keys. After it, lookups find every added event.
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let upto = self
            .pending
            .ids
            .iter()
            .map(|&(_, seq)| seq)
            .max()
            .unwrap_or(0);
        self.flush_upto(upto)
    }

    pub(super) fn flush_upto(&mut self, upto: i64) -> Result<(), Error> {
        let mut pending = std::mem::take(&mut self.pending);
        let tables: [(&str, &mut Vec<(i64, i64)>); 4] = [
            ("ids", &mut pending.ids),
            ("exact", &mut pending.exact),
            ("normalized", &mut pending.normalized),
            ("fingerprints", &mut pending.fingerprints),
        ];
        let outside = self.batch == 0;
        if outside {
            self.conn.execute_batch("BEGIN")?;
        }
        let result = (|| -> Result<(), Error> {
            for (table, rows) in tables {
                rows.sort_unstable();
                let sql = format!("INSERT OR IGNORE INTO {table} VALUES (?1, ?2)");
                for chunk in rows.chunks(FLUSH_CHUNK) {
                    let mut stmt = self.conn.prepare_cached(&sql)?;
                    for &(key, seq) in chunk {
                        stmt.execute([key, seq])?;
                    }
                    drop(stmt);
                    if outside && chunk.len() == FLUSH_CHUNK {
                        // Rows written so far may stay if a crash follows: a rerun writes
                        // them again (INSERT OR IGNORE) because built_seq has not moved.
                        self.conn.execute_batch("COMMIT; BEGIN")?;
                    }
                }
            }
            self.conn
                .prepare_cached("UPDATE state SET value = MAX(value, ?1) WHERE name = 'built_seq'")?
                .execute([upto])?;
            Ok(())
        })();
        match result {
            Ok(()) => {
                if outside {
                    self.conn.execute_batch("COMMIT")?;
                }
                Ok(())
            }
            Err(e) => {
                if outside {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                Err(e)
            }
        }
    }

    /// Where a source was read up to (`ingest --signer-db`), 0 when never.
    pub fn source_position(&self, name: &str) -> Result<i64, Error> {
        Ok(self
            .conn
            .prepare_cached("SELECT position FROM sources WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    }

    /// Records where a source was read up to; in the current batch, so that it commits with
    /// the events read.
    pub fn set_source_position(&mut self, name: &str, position: i64) -> Result<(), Error> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO sources VALUES (?1, ?2)")?
            .execute(params![name, position])?;
        Ok(())
    }
}

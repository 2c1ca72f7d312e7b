//! Reading the index: events by exact, normalised and fingerprint keys, by sequence and id,
//! and the counters.

use super::*;

impl Index {
    /// The ingest counters.
    pub fn counters(&self) -> Result<Counters, Error> {
        let mut c = Counters::default();
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, value FROM counters")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (name, value) = row?;
            let value = value as u64;
            match name.as_str() {
                "indexed" => c.indexed = value,
                "duplicate" => c.duplicate = value,
                "rejected" => c.rejected = value,
                _ => {}
            }
        }
        Ok(c)
    }

    /// The newest `created_at` indexed, to resume a relay subscription from.
    pub fn newest_created_at(&self) -> Result<Option<u64>, Error> {
        let v = self.state("newest_created_at")?;
        Ok((v >= 0).then_some(v as u64))
    }

    /// Events whose output may have this exact SHA-256 (the key is a prefix: the caller
    /// compares the record's hash).
    pub fn by_exact(&self, hash: &[u8; 32], limit: usize) -> Result<Vec<Stored>, Error> {
        self.by_key("exact", hash, limit)
    }

    /// Events whose normalised text may have this SHA-256 (the caller compares, as for
    /// [`Index::by_exact`]).
    pub fn by_normalized(&self, hash: &[u8; 32], limit: usize) -> Result<Vec<Stored>, Error> {
        self.by_key("normalized", hash, limit)
    }

    fn by_key(&self, table: &str, hash: &[u8; 32], limit: usize) -> Result<Vec<Stored>, Error> {
        let sql = format!(
            "SELECT {STORED_COLUMNS} FROM {table} t JOIN events e ON e.seq = t.seq \
             JOIN authors a ON a.n = e.author \
             WHERE t.key = ?1 ORDER BY e.created_at, e.seq LIMIT ?2"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params![prefix(hash), limit as i64])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(stored_from_row(r)?);
        }
        Ok(out)
    }

    /// The events holding fingerprint `hash` (sequence numbers), at most `limit` of them.
    pub fn by_fingerprint(&self, hash: FingerprintHash, limit: usize) -> Result<Vec<i64>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT seq FROM fingerprints WHERE hash = ?1 LIMIT ?2")?;
        let rows = stmt.query_map(params![hash.as_u64() as i64, limit as i64], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many fingerprints event `seq` has, and its largest when its set was capped.
    pub fn fingerprint_set(
        &self,
        seq: i64,
    ) -> Result<Option<(u32, Option<FingerprintHash>)>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT fp_count, fp_max FROM events WHERE seq = ?1")?;
        Ok(stmt
            .query_row([seq], |r| {
                Ok((
                    r.get::<_, i64>(0)? as u32,
                    r.get::<_, Option<i64>>(1)?
                        .map(|v| FingerprintHash::from_u64(v as u64)),
                ))
            })
            .optional()?)
    }

    /// The stored event with sequence number `seq`.
    pub fn by_seq(&self, seq: i64) -> Result<Option<Stored>, Error> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {STORED_COLUMNS} FROM events e JOIN authors a ON a.n = e.author WHERE e.seq = ?1"
        ))?;
        let mut rows = stmt.query([seq])?;
        match rows.next()? {
            Some(r) => Ok(Some(stored_from_row(r)?)),
            None => Ok(None),
        }
    }

    /// The stored event with this id.
    pub fn by_id(&self, id: &EventId) -> Result<Option<Stored>, Error> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {STORED_COLUMNS} FROM ids t JOIN events e ON e.seq = t.seq \
             JOIN authors a ON a.n = e.author WHERE t.key = ?1"
        ))?;
        let mut rows = stmt.query([prefix(id.as_bytes())])?;
        while let Some(r) = rows.next()? {
            if blob(r, 1)? == id.as_bytes().as_slice() {
                return Ok(Some(stored_from_row(r)?));
            }
        }
        Ok(None)
    }
}

/// The columns [`stored_from_row`] reads, from `events e` joined with `authors a`.
pub(super) const STORED_COLUMNS: &str =
    "e.seq, e.id, a.pubkey, e.created_at, e.sig, e.body, e.fp_count, e.fp_max";

/// The event JSON rebuilt from the columns id, pubkey, created_at, sig, body starting at
/// `first`.
pub(super) fn stored_json(r: &rusqlite::Row<'_>, first: usize) -> Result<String, Error> {
    let b = |i: usize| blob(r, first + i);
    codec::event_json(b(0)?, b(1)?, r.get(first + 2)?, b(3)?, b(4)?).map_err(|e| Error::Corrupt {
        detail: e.to_string(),
    })
}

/// Column `i` as a blob; anything else means the database was damaged.
pub(super) fn blob<'a>(r: &'a rusqlite::Row<'_>, i: usize) -> Result<&'a [u8], Error> {
    r.get_ref(i)?.as_blob().map_err(|e| Error::Corrupt {
        detail: format!("column {i}: {e}"),
    })
}

pub(super) fn stored_from_row(r: &rusqlite::Row<'_>) -> Result<Stored, Error> {
    Ok(Stored {
        seq: r.get(0)?,
        json: stored_json(r, 1)?,
        fingerprints: r.get::<_, i64>(6)? as u32,
        fingerprint_max: r
            .get::<_, Option<i64>>(7)?
            .map(|v| FingerprintHash::from_u64(v as u64)),
    })
}

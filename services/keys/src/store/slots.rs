//! Keys chosen by slot: one key per (track type, crypto period) of a content, made on first request and the same on
//! every later one. Packagers that ask per track and per period (the Widevine key server, live key rotation through
//! `POST /api/v1/keys` with a `period`) use this; the keys join the content's one key set, so the license path and
//! `GET /api/v1/keys/{content_id}` see them like any other key.
//!
//! A slot's KID is derived from (tenant, content, track, period), so two requests that race to make the same slot
//! write the same KID and the unique (tenant_id, kid) index keeps exactly one of them: the loser's insert does
//! nothing and both read the winner's key. That also holds across instances and restarts, with no lock.

use sea_orm::PaginatorTrait;

use super::*;

/// Where a key sits in a content: its track type and, for live key rotation, its crypto period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeySlot {
    pub track_type: TrackType,
    pub period: Option<u32>,
}

/// Most slots one request may fill (6 track types times a packager's batch of periods).
pub const MAX_SLOTS_PER_REQUEST: usize = 600;

/// The KID of a slot: the first 16 bytes of SHA-256 over the slot's coordinates, so every instance derives the
/// same one. KIDs are public; this reveals nothing about the key, which stays random (or seed-derived).
pub fn slot_kid(tenant_id: TenantId, content_id: &ContentId, slot: KeySlot) -> Kid {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"clavis/key-slot/v1\0");
    ctx.update(tenant_id.0.as_bytes());
    ctx.update(&(content_id.as_str().len() as u64).to_be_bytes());
    ctx.update(content_id.as_str().as_bytes());
    ctx.update(slot.track_type.as_str().as_bytes());
    match slot.period {
        None => ctx.update(&[0]),
        Some(p) => {
            ctx.update(&[1]);
            ctx.update(&p.to_be_bytes());
        }
    }
    let digest = ctx.finish();
    let mut kid = [0u8; 16];
    kid.copy_from_slice(&digest.as_ref()[..16]);
    Kid(kid)
}

/// The set's key for `slot`: the key made for exactly that track and period, else the period's `ALL` key.
pub fn pick(set: &ContentKeySet, slot: KeySlot) -> Option<&ContentKey> {
    set.keys
        .iter()
        .find(|k| k.period == slot.period && k.track_type == slot.track_type)
        .or_else(|| set.keys.iter().find(|k| k.period == slot.period && k.track_type == TrackType::All))
}

fn pick_all(set: &ContentKeySet, slots: &[KeySlot]) -> Option<Vec<ContentKey>> {
    slots.iter().map(|&slot| pick(set, slot).cloned()).collect()
}

impl KeyStore {
    /// The content's key for each slot, in the order given, making the missing ones with `source` (and the content
    /// itself if it has no keys yet). The boolean says whether this call made any key.
    pub async fn ensure_slots(
        &self,
        tenant_id: TenantId,
        content_id: &ContentId,
        slots: &[KeySlot],
        source: KeySource,
    ) -> Result<(Vec<ContentKey>, bool)> {
        if slots.len() > MAX_SLOTS_PER_REQUEST {
            return Err(ClavisError::invalid("period", format!("at most {MAX_SLOTS_PER_REQUEST} keys per request")));
        }
        let known = self.get(tenant_id, content_id).await?;
        if let Some(keys) = known.as_deref().and_then(|set| pick_all(set, slots)) {
            return Ok((keys, false));
        }
        let mut missing: Vec<KeySlot> = Vec::new();
        for &slot in slots {
            if known.as_deref().and_then(|set| pick(set, slot)).is_none() && !missing.contains(&slot) {
                missing.push(slot);
            }
        }
        let key_for = self.key_maker(tenant_id, source).await?;
        // The content row and its new keys in one transaction: a reader never sees the content without the keys.
        let txn = clavis_core::db::begin_write(&self.platform.db).await?;
        let content_ref = content_ref(&txn, tenant_id, content_id).await?;
        let next_ordinal = content_keys::Entity::find()
            .filter(content_keys::Column::TenantId.eq(tenant_id.0))
            .filter(content_keys::Column::ContentRef.eq(content_ref))
            .count(&txn)
            .await?;
        let now = Utc::now();
        let rows = missing
            .iter()
            .enumerate()
            .map(|(i, &slot)| {
                let kid = slot_kid(tenant_id, content_id, slot);
                let key = key_for(&kid)?;
                let ordinal = i32::try_from(next_ordinal + i as u64).unwrap_or(i32::MAX);
                let made = ContentKey {
                    track_type: slot.track_type,
                    kid,
                    key,
                    iv: crypto::random_array::<16>()?,
                    source,
                    period: slot.period,
                };
                key_row(&self.platform.master_key, tenant_id, content_ref, ordinal, &made, now)
            })
            .collect::<Result<Vec<_>>>()?;
        // A KID that is already there was made by a racing request (the same slot): keep that one.
        let inserted = content_keys::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([content_keys::Column::TenantId, content_keys::Column::Kid])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        self.forget(tenant_id, content_id).await;
        let set = self
            .get(tenant_id, content_id)
            .await?
            .ok_or_else(|| ClavisError::internal("key slots", "content vanished while adding keys"))?;
        let keys = pick_all(&set, slots).ok_or_else(|| {
            ClavisError::internal("key slots", "a slot's derived KID belongs to another content of the tenant")
        })?;
        Ok((keys, inserted > 0))
    }

    /// The content's keys read afresh from the database (for a caller that met a KID the cached set lacks).
    pub async fn refresh(&self, tenant_id: TenantId, content_id: &ContentId) -> Result<Option<Arc<ContentKeySet>>> {
        self.forget(tenant_id, content_id).await;
        self.get(tenant_id, content_id).await
    }

    /// How new keys get their value: random bytes, or the tenant's PlayReady key seed and the KID.
    async fn key_maker(
        &self,
        tenant_id: TenantId,
        source: KeySource,
    ) -> Result<Box<dyn Fn(&Kid) -> Result<Zeroizing<[u8; 16]>> + Send + Sync>> {
        match source {
            KeySource::KeySeed => {
                let seed = crate::seed::load(&self.vault, tenant_id).await?.ok_or_else(|| {
                    ClavisError::new(
                        ErrorCode::KeySeedNotSet,
                        "this tenant has no PlayReady key seed; set one with PUT /api/v1/key-seed, \
                         or use \"source\": \"random\"",
                    )
                })?;
                Ok(Box::new(move |kid| Ok(Zeroizing::new(seed.derive(kid)))))
            }
            KeySource::Random | KeySource::Imported => Ok(Box::new(|_| Ok(Zeroizing::new(crypto::random_array()?)))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_kids_differ_by_every_coordinate() {
        let tenant = TenantId(Uuid::from_u128(1));
        let content = ContentId::parse("live-1").unwrap();
        let slot = KeySlot { track_type: TrackType::Sd, period: Some(7) };
        let base = slot_kid(tenant, &content, slot);
        assert_eq!(base, slot_kid(tenant, &content, slot), "deterministic");
        assert_ne!(base, slot_kid(TenantId(Uuid::from_u128(2)), &content, slot));
        assert_ne!(base, slot_kid(tenant, &ContentId::parse("live-2").unwrap(), slot));
        assert_ne!(base, slot_kid(tenant, &content, KeySlot { track_type: TrackType::Hd, ..slot }));
        assert_ne!(base, slot_kid(tenant, &content, KeySlot { period: Some(8), ..slot }));
        assert_ne!(base, slot_kid(tenant, &content, KeySlot { period: None, ..slot }));
    }
}

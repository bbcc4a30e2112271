//! People's documents (`baton_core::access`): users, groups, API tokens, the first admin's
//! mark, and the audit trail; and the dead letters they replay or drop.

use jiff::Timestamp;

use baton_core::access::{
    ACCESS, AUDIT, ApiToken, AuditEntry, FIRST_ADMIN, FirstAdmin, PAGE_LINKS, PAGE_SESSIONS,
    PageLink, PageSession, TOKENS, USERS, User,
};
use baton_core::dead_letters::{DEAD_LETTERS, DeadLetter};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Store, StoreError, counted, retry_contention, stored};

/// How often a contended change of one document is tried.
const TRIES: u32 = 8;

impl Store {
    /// Changes one document in a transaction: `change` sees what is stored and says what to
    /// write instead (none: nothing). The document as it is after; none when there is none.
    pub async fn modify<T, F>(
        &self,
        collection: &str,
        id: &str,
        change: F,
    ) -> Result<Option<T>, StoreError>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        F: Fn(&T) -> Option<T>,
    {
        let changed = self.change_one(collection, id, change, |_, _| None).await?;
        Ok(changed.map(|(doc, _)| doc))
    }

    /// The user of `email` (normalized), signing them up when they are new: the first person
    /// ever becomes the admin, atomically (the `access/first_admin` mark is created once, so of
    /// two first sign-ins at once one is the admin); everyone later starts disabled. True when
    /// this call made the user.
    pub async fn sign_up(&self, email: &str, now: Timestamp) -> Result<(User, bool), StoreError> {
        if let Some(user) = self.get::<User>(None, USERS, email).await? {
            return Ok((user, false));
        }
        let mark = FirstAdmin {
            email: email.to_string(),
            at: now,
        };
        let first = match self.create(None, ACCESS, FIRST_ADMIN, &mark).await {
            Ok(()) => true,
            // Someone is the first admin already; it may be this person, whose sign-up
            // stopped before their user was written.
            Err(StoreError::AlreadyExists(_)) => self
                .get::<FirstAdmin>(None, ACCESS, FIRST_ADMIN)
                .await?
                .is_some_and(|m| m.email == email),
            Err(e) => return Err(e),
        };
        let user = User::signed_up(email, first, now);
        match self.create(None, USERS, email, &user).await {
            Ok(()) => Ok((user, true)),
            // The same person signing in twice at once.
            Err(StoreError::AlreadyExists(_)) => self
                .get::<User>(None, USERS, email)
                .await?
                .map(|u| (u, false))
                .ok_or_else(|| StoreError::Unavailable(format!("user {email} is being made"))),
            Err(e) => Err(e),
        }
    }

    /// The stored token whose hash is `hash`.
    pub async fn token(&self, hash: &str) -> Result<Option<ApiToken>, StoreError> {
        self.get(None, TOKENS, hash).await
    }

    /// The token whose public id is `id` (one read, by a query on `id`).
    pub async fn token_by_id(&self, id: &str) -> Result<Option<ApiToken>, StoreError> {
        let id = id.to_string();
        let found: Vec<ApiToken> = self
            .db()
            .fluent()
            .select()
            .from(TOKENS)
            .filter(|q| q.for_all([q.field("id").eq(id.clone())]))
            .limit(1)
            .obj()
            .query()
            .await
            .map(counted)
            .map_err(stored)?;
        Ok(found.into_iter().next())
    }

    /// Every token, or those of `owner`.
    pub async fn tokens(&self, owner: Option<&str>) -> Result<Vec<ApiToken>, StoreError> {
        let Some(owner) = owner else {
            return self.list(None, TOKENS).await;
        };
        let owner = owner.to_string();
        self.db()
            .fluent()
            .select()
            .from(TOKENS)
            .filter(|q| q.for_all([q.field("owner").eq(owner.clone())]))
            .obj()
            .query()
            .await
            .map(counted)
            .map_err(stored)
    }

    /// Writes `doc` as `collection/id` (deletes it, with none) and keeps `entry` in the audit
    /// trail, in one commit: the change is never without its entry.
    pub async fn change_audited<T: Serialize + DeserializeOwned + Send + Sync>(
        &self,
        collection: &str,
        id: &str,
        doc: Option<&T>,
        entry: &AuditEntry,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        match doc {
            Some(doc) => tx.set(None, collection, id, doc)?,
            None => tx.delete(None, collection, id)?,
        }
        tx.set(None, AUDIT, &entry.id, entry)?;
        tx.commit().await
    }

    /// `modify`, with the audit entry `entry` makes of the document before and after written
    /// in the same transaction; nothing (and no entry) when `change` says nothing changes. The
    /// document after, and whether this call changed it.
    pub async fn modify_audited<T, F, E>(
        &self,
        collection: &str,
        id: &str,
        change: F,
        entry: E,
    ) -> Result<Option<(T, bool)>, StoreError>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        F: Fn(&T) -> Option<T>,
        E: Fn(&T, &T) -> AuditEntry,
    {
        self.change_one(collection, id, change, |before, after| {
            Some(entry(before, after))
        })
        .await
    }

    async fn change_one<T, F, E>(
        &self,
        collection: &str,
        id: &str,
        change: F,
        entry: E,
    ) -> Result<Option<(T, bool)>, StoreError>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        F: Fn(&T) -> Option<T>,
        E: Fn(&T, &T) -> Option<AuditEntry>,
    {
        retry_contention(TRIES, || async {
            let mut tx = self.begin().await?;
            let Some(current) = tx.get::<T>(None, collection, id).await? else {
                tx.rollback().await;
                return Ok(None);
            };
            let Some(new) = change(&current) else {
                tx.rollback().await;
                return Ok(Some((current, false)));
            };
            tx.set(None, collection, id, &new)?;
            if let Some(entry) = entry(&current, &new) {
                tx.set(None, AUDIT, &entry.id, &entry)?;
            }
            tx.commit().await?;
            Ok(Some((new, true)))
        })
        .await
    }

    /// Keeps one change in the audit trail.
    pub async fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        self.create(None, AUDIT, &entry.id, entry).await
    }

    /// The latest dead letters, newest first (`baton_core::dead_letters`).
    pub async fn dead_letters(&self, limit: u32) -> Result<Vec<DeadLetter>, StoreError> {
        self.db()
            .fluent()
            .select()
            .from(DEAD_LETTERS)
            .order(|o| o.fields([o.field("received_at").desc()]))
            .limit(limit)
            .obj()
            .query()
            .await
            .map(counted)
            .map_err(stored)
    }

    /// The latest changes, newest first; those before `before` (an entry's id) when given.
    pub async fn recent_audit(
        &self,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let before = before.map(str::to_string);
        self.db()
            .fluent()
            .select()
            .from(AUDIT)
            .filter(|q| q.for_all([before.clone().and_then(|b| q.field("id").less_than(b))]))
            .order(|o| o.fields([o.field("id").desc()]))
            .limit(limit)
            .obj()
            .query()
            .await
            .map(counted)
            .map_err(stored)
    }

    /// Keeps a one-time page link under the hash of its code.
    pub async fn page_link(&self, hash: &str, link: &PageLink) -> Result<(), StoreError> {
        self.create(None, PAGE_LINKS, hash, link).await
    }

    /// Opens the page link whose code hashes to `link_hash`, once: in one transaction the link
    /// is deleted, the session `session` makes of it is stored under `session_hash`, and the
    /// audit entry `entry` makes of it is kept. None when there is no such link or it has
    /// expired (nothing is written).
    pub async fn open_page_link(
        &self,
        link_hash: &str,
        session_hash: &str,
        now: Timestamp,
        session: impl Fn(&PageLink) -> PageSession,
        entry: impl Fn(&PageLink) -> AuditEntry,
    ) -> Result<Option<(PageLink, PageSession)>, StoreError> {
        retry_contention(TRIES, || async {
            let mut tx = self.begin().await?;
            let link: Option<PageLink> = tx.get(None, PAGE_LINKS, link_hash).await?;
            let Some(link) = link.filter(|l| l.expire_at > now) else {
                tx.rollback().await;
                return Ok(None);
            };
            let made = session(&link);
            let entry = entry(&link);
            tx.delete(None, PAGE_LINKS, link_hash)?;
            tx.set(None, PAGE_SESSIONS, session_hash, &made)?;
            tx.set(None, AUDIT, &entry.id, &entry)?;
            tx.commit().await?;
            Ok(Some((link, made)))
        })
        .await
    }

    /// The page session whose secret hashes to `hash`.
    pub async fn page_session(&self, hash: &str) -> Result<Option<PageSession>, StoreError> {
        self.get(None, PAGE_SESSIONS, hash).await
    }
}

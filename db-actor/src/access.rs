//! Who may do what in one database: its `_security` object, the rule that
//! design documents need a database admin, and the per-document rules of
//! `_users` and `_replicator`.

use crate::database::Database;
use crate::design::Guard;
use shared::doc::{self, IncomingDoc};
use shared::error::{CouchError, CouchResult};
use shared::replication::{docs as replicator_docs, REPLICATOR_DB};
use shared::security::Security;
use shared::user::UserCtx;
use shared::users::{self, UsersConfig, USERS_DB};

pub struct Access<'a> {
    pub user: &'a UserCtx,
    pub security: Security,
    /// This is the `_users` database.
    pub users_db: bool,
    /// This is the `_replicator` database.
    pub replicator_db: bool,
    pub users: UsersConfig,
}

impl<'a> Access<'a> {
    pub fn load(db: &Database, user: &'a UserCtx, users: UsersConfig) -> CouchResult<Access<'a>> {
        let meta = db.meta()?;
        Ok(Access {
            user,
            security: Security::from_json(&meta.security),
            users_db: meta.name == USERS_DB,
            replicator_db: meta.name == REPLICATOR_DB,
            users,
        })
    }

    pub fn is_db_admin(&self) -> bool {
        self.security.is_db_admin(self.user)
    }

    /// Reading and writing documents. In `_users` everyone gets this far;
    /// the per-document rules decide.
    pub fn member(&self) -> CouchResult<()> {
        if self.users_db {
            Ok(())
        } else {
            self.security.check_member(self.user)
        }
    }

    pub fn db_admin(&self) -> CouchResult<()> {
        self.security.check_db_admin(self.user)
    }

    /// Whole-database reads (`_all_docs`, `_changes`, ...): members, except
    /// in `_users` where only admins may list.
    pub fn list(&self, what: &str) -> CouchResult<()> {
        if self.users_db && !self.is_db_admin() {
            return Err(CouchError::forbidden(format!(
                "Only admins can access {what} of system databases."
            )));
        }
        self.member()
    }

    /// Checks (and for `_users`, transforms) one document write.
    pub fn before_write(&self, db: &Database, id: &str, doc: &mut IncomingDoc) -> CouchResult<()> {
        if doc::is_design(id) {
            self.db_admin()?;
            if !doc.deleted {
                crate::design::validate_on_save(&doc.body)?;
            }
        }
        // The replicator's own state writes skip `validate_doc_update`, so
        // a user's function cannot stop it recording a job's outcome.
        if !(self.replicator_db && replicator_docs::is_system(self.user)) {
            db.validate_write(id, doc, self.user)?;
        }
        if self.users_db {
            let old = db.winner_body(id)?;
            users::before_write(
                id,
                doc,
                old.as_ref(),
                self.user,
                self.is_db_admin(),
                &self.users,
            )?;
        }
        if self.replicator_db && !doc::is_design(id) {
            let old = db.winner_body(id)?;
            replicator_docs::before_write(
                &mut doc.body,
                old.as_ref(),
                self.user,
                self.is_db_admin(),
            )?;
        }
        Ok(())
    }

    /// Whether documents read through this request must be redacted for
    /// the reader (`_replicator` credentials of other owners).
    pub fn redacting_reader(&self) -> Option<UserCtx> {
        (self.replicator_db && !self.is_db_admin()).then(|| self.user.clone())
    }

    /// Checks one document read.
    pub fn before_read(&self, id: &str) -> CouchResult<()> {
        if self.users_db {
            users::check_read(id, self.user, self.is_db_admin())
        } else {
            Ok(())
        }
    }
}

impl Guard for Access<'_> {
    fn before_read(&self, id: &str) -> CouchResult<()> {
        Access::before_read(self, id)
    }

    fn before_write(&self, db: &Database, id: &str, doc: &mut IncomingDoc) -> CouchResult<()> {
        Access::before_write(self, db, id, doc)
    }
}

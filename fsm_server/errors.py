"""Errors of the server, under fsm_protocol's FsmError.

Ingest errors carry the stable ``reason`` code the quarantine records; the protocol's own
errors (BadSignature, TooLarge, ...) keep theirs when they pass through the pipeline.

    FsmError
    └── ServerError
        ├── DatabaseError          the database cannot be reached or migrated (retry later)
        │   └── DataRefused        the database refused one message's data (quarantine it)
        ├── RegistryError          unknown name, duplicate client, bad public key file
        ├── IngestError            a message cannot be loaded (reason code)
        │   ├── UnknownClient      reason "unknown_client"
        │   ├── RevokedClient      reason "revoked_client"
        │   ├── Implausible        reason "implausible"
        │   ├── CustomerMismatch   reason "customer_mismatch"
        │   └── SeqConflict        reason "seq_conflict"
        ├── MailboxError           the IMAP server failed or refused
        ├── ReportError            a report cannot be built as asked (kind, format, period)
        ├── TenancyError           unknown dealer or customer, a bad name
        │   └── NotFound           no such object in the caller's scope (missing or another tenant's)
        ├── NotifyError            a notification rule or mail template is wrong
        ├── AccountError           unknown user, bad role or scope, a password the policy refuses
        ├── AuditError             the audit log's hash chain is broken
        ├── BillingError         a billing period, meter or export refused (state, flags, signature)
        ├── OrderError             a supply order's step refused (state, reason, settings)
        ├── ApiError               an API token refused (scope, name) or an API request's bad parameter
        ├── WebError               the portal cannot start (TLS files, listen address)
        └── BackupError            a backup cannot be written, read, verified or restored
            ├── BackupCorrupt      a backup file is damaged, incomplete or not an fsm backup
            └── TargetNotEmpty     restore would overwrite a database that holds data
"""

from __future__ import annotations

from fsm_protocol.errors import FsmError


class ServerError(FsmError):
    reason = "server_error"


class DatabaseError(ServerError):
    reason = "database_error"


class DataRefused(DatabaseError):
    """The database refused a value of one message (too long, out of range, a NUL byte, a broken
    reference): the fault is in that message, not in the database, so it is not retried."""

    reason = "data_refused"


class RegistryError(ServerError):
    reason = "registry_error"


class IngestError(ServerError):
    reason = "ingest_error"


class UnknownClient(IngestError):
    reason = "unknown_client"
    default_hint = "enrol the client with `fsm-server clients add NAME --key FILE`, then `quarantine retry`"


class RevokedClient(IngestError):
    reason = "revoked_client"


class Implausible(IngestError):
    reason = "implausible"


class CustomerMismatch(IngestError):
    """The first report of a client enrolled under no customer names one that other clients
    report for: joining an existing customer takes the dealer's word (fsm_server.tenancy)."""

    reason = "customer_mismatch"


class SeqConflict(IngestError):
    """An authentic report under a number that already holds a different report."""

    reason = "seq_conflict"


class MailboxError(ServerError):
    reason = "mailbox_error"


class ReportError(ServerError):
    reason = "report_error"


class TenancyError(ServerError):
    reason = "tenancy_error"


class NotFound(TenancyError):
    """An object that does not exist or belongs to another tenant: the two are not told apart."""

    reason = "not_found"


class NotifyError(ServerError):
    reason = "notify_error"


class AccountError(ServerError):
    reason = "account_error"


class AuditError(ServerError):
    reason = "audit_error"


class BillingError(ServerError):
    """A billing step refused: a period in the wrong state, a flagged meter not yet corrected or
    excluded, an export whose signature or digest does not check."""

    reason = "billing_error"


class OrderError(ServerError):
    """A supply-order step refused: an order not in a state the step starts from, a missing
    reason, a lead time out of range."""

    reason = "order_error"


class ApiError(ServerError):
    """An API token that cannot be made or revoked as asked, or an API request's bad parameter."""

    reason = "api_error"


class WebError(ServerError):
    reason = "web_error"
    exit_code = 3


class BackupError(ServerError):
    reason = "backup_error"


class BackupCorrupt(BackupError):
    """A backup file that is damaged, cut short, or no fsm backup at all."""

    reason = "backup_corrupt"
    default_hint = "take another backup file (an older one, or the off-site copy)"


class TargetNotEmpty(BackupError):
    reason = "target_not_empty"
    default_hint = (
        "restore into an empty database, or add --force to replace what is there "
        "(back it up first: `fsm-server backup`)"
    )


__all__ = [
    "AccountError",
    "ApiError",
    "AuditError",
    "BackupCorrupt",
    "BackupError",
    "BillingError",
    "CustomerMismatch",
    "DataRefused",
    "DatabaseError",
    "Implausible",
    "IngestError",
    "MailboxError",
    "NotFound",
    "NotifyError",
    "OrderError",
    "RegistryError",
    "ReportError",
    "RevokedClient",
    "ServerError",
    "TargetNotEmpty",
    "TenancyError",
    "UnknownClient",
    "WebError",
]

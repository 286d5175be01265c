package tools

// The JSON schemas of lock, unlock, write_file and list_locks, written by
// hand like those in schema.go.

const lockInput = `{
  "type": "object",
  "properties": {
    "path": {"type": "string", "minLength": 1, "description": "Relative to the workspace root; need not exist yet."},
    "workspace": {"type": "string", "minLength": 1, "description": "Optional when the server serves one."},
    "ttl_seconds": {"type": "integer", "minimum": 1, "maximum": 86400, "description": "Default 60."},
    "mode": {"type": "string", "enum": ["exclusive", "shared"], "description": "Default exclusive. A refresh keeps the mode."},
    "wait_ms": {"type": "integer", "minimum": 0, "maximum": 300000, "description": "Wait this long for a holder to let go. Default 0."},
    "lock_token": {"type": "string", "minLength": 1, "description": "Of your lock on this path, to refresh it."}
  },
  "required": ["path"],
  "additionalProperties": false
}`

const lockOutput = `{
  "type": "object",
  "properties": {
    "lock_token": {"type": "string", "description": "Your secret proof of holding the lock: for write_file, unlock, and lock to refresh."},
    "fencing_token": {"type": "integer", "description": "Grows with every new lock on this path; a refresh keeps it."},
    "expires_at": {"type": "string", "description": "RFC 3339, UTC."},
    "holder": {"type": "string", "description": "This session's name, as others see it."},
    "mode": {"type": "string", "enum": ["exclusive", "shared"], "description": "The mode held."},
    "workspace": {"type": "string", "description": "The workspace of the path."},
    "path": {"type": "string", "description": "The locked path, normalised."}
  },
  "required": ["lock_token", "fencing_token", "expires_at", "holder", "mode", "workspace", "path"]
}`

const unlockInput = `{
  "type": "object",
  "properties": {
    "path": {"type": "string", "minLength": 1, "description": "As passed to lock."},
    "workspace": {"type": "string", "minLength": 1, "description": "Optional when the server serves one."},
    "lock_token": {"type": "string", "minLength": 1, "description": "From lock."}
  },
  "required": ["path", "lock_token"],
  "additionalProperties": false
}`

const unlockOutput = `{
  "type": "object",
  "properties": {
    "released": {"type": "boolean", "description": "true: others may take the lock at once."}
  },
  "required": ["released"]
}`

const writeFileInput = `{
  "type": "object",
  "properties": {
    "path": {"type": "string", "minLength": 1, "description": "Relative to the workspace root."},
    "workspace": {"type": "string", "minLength": 1, "description": "Optional when the server serves one."},
    "content": {"type": "string", "description": "The whole file: text, or base64 with encoding base64; at most 16 MiB; empty writes an empty file."},
    "encoding": {"type": "string", "enum": ["text", "base64"], "description": "Default text."},
    "lock_token": {"type": "string", "minLength": 1, "description": "Of your exclusive lock on the path."}
  },
  "required": ["path", "content"],
  "additionalProperties": false
}`

const writeFileOutput = `{
  "type": "object",
  "properties": {
    "size": {"type": "integer", "description": "Bytes written."},
    "sha256": {"type": "string", "description": "Of the content written."},
    "seq": {"type": "integer", "description": "The seq of the change in the log; 0 when unchanged."},
    "unchanged": {"type": "boolean", "description": "true: the file had this content already; nothing was written."},
    "workspace": {"type": "string", "description": "The workspace written to."},
    "path": {"type": "string", "description": "The path written, normalised."}
  },
  "required": ["size", "sha256", "seq", "unchanged", "workspace", "path"]
}`

const listLocksInput = `{
  "type": "object",
  "properties": {
    "paths": {
      "type": "array",
      "items": {"type": "string", "minLength": 1},
      "description": "Globs as in subscribe. Default: every lock."
    },
    "workspace": {"type": "string", "minLength": 1, "description": "Optional when the server serves one."}
  },
  "additionalProperties": false
}`

const listLocksOutput = `{
  "type": "object",
  "properties": {
    "locks": {"type": "array", "items": {"type": "object", "properties": {
      "path": {"type": "string"}, "holder": {"type": "string"}, "mode": {"type": "string", "enum": ["exclusive", "shared"]},
      "fencing_token": {"type": "integer"}, "expires_at": {"type": "string", "description": "RFC 3339, UTC."}
    }, "required": ["path", "holder", "mode", "fencing_token", "expires_at"]}, "description": "Sorted by path."}
  },
  "required": ["locks"]
}`

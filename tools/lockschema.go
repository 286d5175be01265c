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
    "lock_token": {"type": "string", "description": "Your secret proof of holding the lock. Pass it to write_file, to unlock, and to lock again to refresh. Keep it to yourself."},
    "fencing_token": {"type": "integer", "description": "A number that grows with every new lock on this path (a refresh keeps it). Systems downstream can refuse work carrying a smaller one than they have seen."},
    "expires_at": {"type": "string", "description": "When the lock runs out (RFC 3339, UTC) unless refreshed or released before."},
    "holder": {"type": "string", "description": "The name the lock is held under: this MCP session (client name and a short session suffix). Others see it in lock events and conflicts."},
    "mode": {"type": "string", "enum": ["exclusive", "shared"], "description": "The mode of the lock you hold."},
    "workspace": {"type": "string", "description": "The workspace of the locked path."},
    "path": {"type": "string", "description": "The locked path, normalised, relative to the workspace root."}
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
    "released": {"type": "boolean", "description": "true: the lock is released and others may take it at once."}
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
    "size": {"type": "integer", "description": "Size of the file written, in bytes."},
    "sha256": {"type": "string", "description": "Hex SHA-256 of the content written."},
    "seq": {"type": "integer", "description": "Position of the change in the workspace log (the seq of the event it produced); 0 when the content was already identical."},
    "unchanged": {"type": "boolean", "description": "true when the file already had exactly this content: nothing was written and no event was produced."},
    "workspace": {"type": "string", "description": "The workspace written to."},
    "path": {"type": "string", "description": "The path written, normalised, relative to the workspace root."}
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

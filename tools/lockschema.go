package tools

// The JSON schemas of lock, unlock and write_file, written by hand like
// those in schema.go.

const lockInput = `{
  "type": "object",
  "properties": {
    "path": {
      "type": "string",
      "minLength": 1,
      "description": "The file to lock, relative to the workspace root (for example \"src/main.go\"). It need not exist yet: lock a file you are about to create."
    },
    "workspace": {
      "type": "string",
      "minLength": 1,
      "description": "Name of the workspace the path is in. May be omitted when the server serves a single workspace; otherwise required (the error lists the names)."
    },
    "ttl_seconds": {
      "type": "integer",
      "minimum": 1,
      "maximum": 86400,
      "description": "How long the lock lasts unless you refresh or release it, in seconds, from 1 to 86400. Default 60. Pick a little more than the edit needs and refresh (lock again with lock_token) if it takes longer: lock.expiring reaches this session's list_changes when half the time is left (at the latest 30 s before the end). A lock that runs out is released for everyone else."
    },
    "mode": {
      "type": "string",
      "enum": ["exclusive", "shared"],
      "description": "exclusive (default) to edit the file: nobody else can lock it or write it through filecast until you release it. shared to keep it from changing while you read it: other shared locks are allowed, exclusive ones are not, and nobody writes the file through filecast while a shared lock is held, its holders included. A refresh keeps the lock's mode."
    },
    "wait_ms": {
      "type": "integer",
      "minimum": 0,
      "maximum": 300000,
      "description": "When someone else holds the lock, wait up to this many milliseconds (0 to 300000) for them to release it, or for it to expire, instead of failing at once. Default 0."
    },
    "lock_token": {
      "type": "string",
      "minLength": 1,
      "description": "The lock_token of a lock you hold on this path, to refresh it: its expiry moves to ttl_seconds from now and its fencing_token and mode stay the same. Omit to take a new lock."
    }
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
    "path": {"type": "string", "minLength": 1, "description": "The locked path, as you passed it to lock."},
    "workspace": {"type": "string", "minLength": 1, "description": "The workspace of the path. May be omitted when the server serves a single workspace."},
    "lock_token": {"type": "string", "minLength": 1, "description": "The lock_token that lock returned for this path."}
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
    "path": {"type": "string", "minLength": 1, "description": "The file to write, relative to the workspace root. Missing folders are created; an existing file is replaced."},
    "workspace": {"type": "string", "minLength": 1, "description": "The workspace of the path. May be omitted when the server serves a single workspace."},
    "content": {"type": "string", "description": "Required: the whole new content of the file, text as is, or base64 when encoding is base64. At most 16 MiB once decoded. An empty string writes an empty file."},
    "encoding": {"type": "string", "enum": ["text", "base64"], "description": "text (default) writes content as UTF-8 text; base64 decodes content first, for binary files."},
    "lock_token": {"type": "string", "minLength": 1, "description": "The lock_token of your exclusive lock on this path, if you hold one. Required to write a file you locked exclusively; with it the write is refused if your lock has expired or was taken over, so you never overwrite someone else's work."}
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

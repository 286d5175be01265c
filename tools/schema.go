package tools

// The JSON schemas of the tools, written by hand so that every field has a
// description aimed at the model and the output schemas describe the wire
// form of results exactly. The input schemas are enforced as written
// (validate.go); a test checks that their properties are the fields of
// the argument structs. Input schemas are sent to the model with every
// turn, so their descriptions say only what the name, type and bounds do
// not.

const subscribeInput = `{
  "type": "object",
  "properties": {
    "paths": {
      "type": "array",
      "items": {"type": "string", "minLength": 1},
      "description": "Globs: * within a folder, ** across, {a,b}; without / matches the name at any depth (*.md); ending in / a folder (docs/); else anchored at the root. Default: all."
    },
    "events": {
      "type": "array",
      "items": {"type": "string", "enum": ["created", "updated", "deleted", "moved", "locked", "unlocked"]},
      "description": "Default: the file kinds. locked: lock.acquired, lock.expiring; unlocked: lock.released, lock.expired."
    },
    "workspace": {"type": "string", "minLength": 1, "description": "Default: every workspace."},
    "exclude_own": {"type": "boolean", "description": "EXCLUDE_OWN"}
  },
  "additionalProperties": false
}`

const subscribeOutput = `{
  "type": "object",
  "properties": {
    "subscription_id": {"type": "string", "description": "For list_changes and unsubscribe."},
    "cursor": {"type": "string", "description": "list_changes from it returns exactly the matching changes made after subscribing."}
  },
  "required": ["subscription_id", "cursor"]
}`

const unsubscribeInput = `{
  "type": "object",
  "properties": {
    "subscription_id": {"type": "string", "minLength": 1, "description": "From subscribe."}
  },
  "required": ["subscription_id"],
  "additionalProperties": false
}`

const unsubscribeOutput = `{
  "type": "object",
  "properties": {
    "removed": {"type": "boolean", "description": "false: there was no such subscription."}
  },
  "required": ["removed"]
}`

const listChangesInput = `{
  "type": "object",
  "properties": {
    "cursor": {
      "type": "string",
      "minLength": 1,
      "maxLength": 4096,
      "description": "From an earlier result (list_changes, subscribe, list_files, read_file). Omit to read this session's buffer (over HTTP with protocol 2026-07-28 there is none)."
    },
    "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "Default 100."},
    "wait_ms": {"type": "integer", "minimum": 0, "maximum": 30000, "description": "Long-poll: wait up to this long for a change. Default 0."},
    "subscription_id": {"type": "string", "minLength": 1, "description": "Only this subscription's events."},
    "detail": {"type": "string", "enum": ["compact", "full"], "description": "Default compact; full adds event_id, sha256, workspace."},
    "diff": {"type": "boolean", "description": "true: file.updated and file.created carry what changed (diff)."}
  },
  "additionalProperties": false
}`

// eventSchema describes an event of a list_changes result, compact or
// full.
const eventSchema = `{
  "type": "object",
  "properties": {
    "seq": {"type": "integer", "description": "Position in the workspace log."},
    "type": {"type": "string", "enum": ["file.created", "file.updated", "file.deleted", "file.moved", "lock.acquired", "lock.released", "lock.expiring", "lock.expired"]},
    "workspace": {"type": "string", "description": "In full events, and in compact ones when the result spans several workspaces."},
    "path": {"type": "string", "description": "Relative to the workspace root."},
    "old_path": {"type": "string", "description": "The previous path, for file.moved."},
    "size": {"type": "integer", "description": "Bytes, for file events other than file.deleted."},
    "actor": {"type": "string", "description": "fs (seen on disk), api:<token name>, or mcp:<client>#<session> (a write through that session)."},
    "lock": {"type": "object", "properties": {"holder": {"type": "string"}, "fencing_token": {"type": "integer"}, "mode": {"type": "string"}}, "description": "The lock held on the path at the time."},
    "conflict": {"type": "boolean", "description": "true: changed while another holder had it locked exclusively."},
    "expires_at": {"type": "string", "description": "When the lock of a lock event expires."},
    "timestamp": {"type": "string", "description": "UTC; to the millisecond in compact events."},
    "event_id": {"type": "string", "description": "Full events: unique, stable across redeliveries."},
    "sha256": {"type": "string", "description": "Full events: of the new content."},
    "diff": {"type": "string", "description": "With diff true: the unified diff of a file.updated against the content before (3 lines of context), the start of a file.created's content."},
    "diff_truncated": {"type": "boolean", "description": "true: diff stops at its bound (2 KiB); read_file shows the rest."},
    "diff_unavailable": {"type": "string", "enum": ["binary", "too_large", "not_stored"], "description": "With diff true, why there is none: not text, too large (or the result's diffs are already long), or the content before is no longer kept."}
  },
  "required": ["seq", "type", "path", "timestamp"]
}`

const listChangesOutput = `{
  "type": "object",
  "properties": {
    "events": {"type": "array", "items": ` + eventSchema + `, "description": "Oldest first within each workspace."},
    "cursor": {"type": "string", "description": "Pass it next time to continue right after these events (the head when there were none)."},
    "has_more": {"type": "boolean", "description": "Present when more events are waiting: call again with cursor at once."},
    "overflowed": {"type": "boolean", "description": "Present when this session's buffer dropped events: call again with cursor to read them from the log."}
  },
  "required": ["events", "cursor"]
}`

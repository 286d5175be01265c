package tools

// The JSON schemas of the tools, written by hand so that every field has a
// description aimed at the model and the output schemas describe the wire
// form of events exactly (events.Event marshals itself). The input schemas
// are enforced as written (validate.go); a test checks that their
// properties are the fields of the argument structs.

const subscribeInput = `{
  "type": "object",
  "properties": {
    "paths": {
      "type": "array",
      "items": {"type": "string", "minLength": 1, "maxLength": 1024},
      "maxItems": 256,
      "description": "Globs relative to the workspace root selecting the files to hear about. '*' stays within one folder, '**' crosses folders, '{a,b}' alternatives. A pattern without '/' matches the file name at any depth ('*.md'); a pattern ending in '/' matches everything under that folder ('docs/'); otherwise it is anchored at the root ('src/**/*.go'). Omit to hear about every file."
    },
    "events": {
      "type": "array",
      "items": {"type": "string", "enum": ["created", "updated", "deleted", "moved", "locked", "unlocked"]},
      "description": "Kinds of change to hear about. Omit for the four file kinds (created, updated, deleted, moved). 'locked' brings lock.acquired and lock.expiring, 'unlocked' brings lock.released and lock.expired."
    },
    "workspace": {
      "type": "string",
      "minLength": 1,
      "description": "Name of the workspace to watch. Omit to watch every workspace this server serves."
    },
    "exclude_own": {
      "type": "boolean",
      "description": "EXCLUDE_OWN"
    }
  },
  "additionalProperties": false
}`

const subscribeOutput = `{
  "type": "object",
  "properties": {
    "subscription_id": {"type": "string", "description": "Pass it to list_changes to read only this subscription's events, or to unsubscribe."},
    "cursor": {"type": "string", "description": "The log position at the moment of subscribing; list_changes with this cursor returns exactly the matching changes made after it."}
  },
  "required": ["subscription_id", "cursor"]
}`

const unsubscribeInput = `{
  "type": "object",
  "properties": {
    "subscription_id": {"type": "string", "minLength": 1, "description": "The subscription_id that subscribe returned."}
  },
  "required": ["subscription_id"],
  "additionalProperties": false
}`

const unsubscribeOutput = `{
  "type": "object",
  "properties": {
    "removed": {"type": "boolean", "description": "true if the subscription existed and is now gone; false if there was no such subscription (nothing to do)."}
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
      "description": "A cursor returned by an earlier list_changes or subscribe call, even from another session or before a restart. With it, the changes after that position are read from the durable log, and the same cursor always returns the same changes. Omit it to get what this session's buffer collected since your last call (over HTTP with protocol 2026-07-28 there is no buffer: always pass one)."
    },
    "limit": {
      "type": "integer",
      "minimum": 1,
      "maximum": 1000,
      "description": "Most events to return, from 1 to 1000; default 100. When more are waiting, has_more is true: call again with the returned cursor."
    },
    "wait_ms": {
      "type": "integer",
      "minimum": 0,
      "maximum": 30000,
      "description": "Long-poll: when nothing is waiting, wait up to this many milliseconds (0 to 30000) for the first change before returning. Default 0 returns at once."
    },
    "subscription_id": {
      "type": "string",
      "minLength": 1,
      "description": "Only return events matching this subscription. Omit to get the events of all of this session's subscriptions (with a cursor and no subscriptions: every file event)."
    }
  },
  "additionalProperties": false
}`

const eventSchema = `{
  "type": "object",
  "properties": {
    "event_id": {"type": "string", "description": "Unique and stable across redeliveries."},
    "seq": {"type": "integer", "description": "Position in the workspace log."},
    "type": {"type": "string", "enum": ["file.created", "file.updated", "file.deleted", "file.moved", "lock.acquired", "lock.released", "lock.expiring", "lock.expired"]},
    "workspace": {"type": "string"},
    "path": {"type": "string", "description": "Slash-separated, relative to the workspace root."},
    "old_path": {"type": "string", "description": "The previous path, for file.moved."},
    "size": {"type": "integer", "description": "Size in bytes, for file events other than file.deleted."},
    "sha256": {"type": "string"},
    "actor": {"type": "string", "description": "Who made the change: fs (seen on disk), api:<token name>, or mcp:<client name>#<session> for a write through an MCP session (the same name as that session's locks, after mcp:)."},
    "lock": {"type": "object", "properties": {"holder": {"type": "string"}, "fencing_token": {"type": "integer"}, "mode": {"type": "string"}}},
    "conflict": {"type": "boolean", "description": "true when someone changed a file another holder had locked exclusively."},
    "expires_at": {"type": "string"},
    "timestamp": {"type": "string"}
  },
  "required": ["event_id", "seq", "type", "workspace", "path"]
}`

const listChangesOutput = `{
  "type": "object",
  "properties": {
    "events": {"type": "array", "items": ` + eventSchema + `, "description": "The changes, oldest first within each workspace."},
    "cursor": {"type": "string", "description": "Save it: pass it to the next list_changes call to continue exactly after these events (the current head when none were returned)."},
    "has_more": {"type": "boolean", "description": "More matching events are already waiting: call again with cursor right away."},
    "overflowed": {"type": "boolean", "description": "This session's buffer was full and dropped events: call list_changes with the cursor of this result (or your last saved one) to recover them from the log."}
  },
  "required": ["events", "cursor", "has_more", "overflowed"]
}`

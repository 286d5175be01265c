package tools

// The JSON schemas of read_file and list_files, written by hand like those
// in schema.go.

const readFileInput = `{
  "type": "object",
  "properties": {
    "path": {"type": "string", "minLength": 1, "description": "Relative to the workspace root."},
    "workspace": {"type": "string", "minLength": 1, "description": "Optional when the server serves one."},
    "offset": {"type": "integer", "minimum": 0, "description": "Read a part from this byte on."},
    "length": {"type": "integer", "minimum": 1, "maximum": 262144, "description": "Bytes of the part; default the most. Text is cut to whole characters: continue at offset + length of the result."},
    "since": {"type": "string", "minLength": 1, "description": "sha256 of a version you saw: answer with the diff from it."}
  },
  "required": ["path"],
  "additionalProperties": false
}`

const readFileOutput = `{
  "type": "object",
  "properties": {
    "content": {"type": "string", "description": "The file, or the part asked for."},
    "encoding": {"type": "string", "enum": ["text", "base64"], "description": "base64 for anything but UTF-8 text."},
    "size": {"type": "integer", "description": "Bytes of the whole file."},
    "sha256": {"type": "string", "description": "Of the whole file."},
    "cursor": {"type": "string", "description": "The log position the content is at least as new as: list_changes from it brings every later change."},
    "offset": {"type": "integer", "description": "For a part: where it starts."},
    "length": {"type": "integer", "description": "For a part: its bytes."},
    "diff": {"type": "string", "description": "With since: the unified diff from that version to this one (3 lines of context), instead of content; \"\" when the file is that version."},
    "diff_unavailable": {"type": "string", "enum": ["binary", "too_large", "not_stored"], "description": "With since, when no diff can be given and content comes instead: a version is not text, the file or the diff is too large, or that version is no longer kept."}
  },
  "required": ["content", "encoding", "size", "sha256", "cursor"]
}`

const listFilesInput = `{
  "type": "object",
  "properties": {
    "paths": {
      "type": "array",
      "items": {"type": "string", "minLength": 1},
      "description": "Globs as in subscribe. Default: every file."
    },
    "workspace": {"type": "string", "minLength": 1, "description": "Optional when the server serves one."},
    "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "Default 500."},
    "page": {"type": "string", "minLength": 1, "description": "next_page of the previous call."}
  },
  "additionalProperties": false
}`

const listFilesOutput = `{
  "type": "object",
  "properties": {
    "files": {"type": "array", "items": {"type": "object", "properties": {
      "path": {"type": "string"}, "size": {"type": "integer"}, "sha256": {"type": "string"},
      "modified": {"type": "string", "description": "UTC, to the millisecond."}
    }, "required": ["path", "size", "sha256", "modified"]}, "description": "Sorted by path."},
    "cursor": {"type": "string", "description": "The log position the listing is consistent with (the same on every page): list_changes from it brings every later change."},
    "next_page": {"type": "string", "description": "Present when more files match: pass it as page."}
  },
  "required": ["files", "cursor"]
}`

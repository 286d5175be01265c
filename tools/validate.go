package tools

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The input schemas are enforced here rather than by mcp-go's
// WithInputSchemaValidation, whose messages are JSON-pointer style
// ("/limit: minimum: got 0, want 1") and never say which arguments a tool
// takes: a model fixes its call faster when the message names the
// argument and the values allowed, in words. Each tool's handler is
// wrapped once (see guard); no handler checks its arguments by hand.

// inputSchema is the part of JSON Schema the tools' input schemas use.
// parseSchema refuses any other keyword, so that every constraint a schema
// shows the model is one that check enforces.
type inputSchema struct {
	Type                 string                  `json:"type"`
	Description          string                  `json:"description"`
	Properties           map[string]*inputSchema `json:"properties"`
	Required             []string                `json:"required"`
	AdditionalProperties *bool                   `json:"additionalProperties"`
	Items                *inputSchema            `json:"items"`
	Enum                 []string                `json:"enum"`
	Minimum              *float64                `json:"minimum"`
	Maximum              *float64                `json:"maximum"`
	MinLength            *int                    `json:"minLength"`
	MaxLength            *int                    `json:"maxLength"`
	MaxItems             *int                    `json:"maxItems"`
}

// parseSchema reads a tool's input schema: an object whose properties are
// strings, integers, booleans or arrays of those, with
// additionalProperties false.
func parseSchema(src string) (*inputSchema, error) {
	dec := json.NewDecoder(strings.NewReader(src))
	dec.DisallowUnknownFields()
	var s inputSchema
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("input schema: %w", err)
	}
	if s.Type != "object" || s.AdditionalProperties == nil || *s.AdditionalProperties {
		return nil, errors.New("input schema: want an object with additionalProperties false")
	}
	for _, r := range s.Required {
		if s.Properties[r] == nil {
			return nil, fmt.Errorf("input schema: required %q is not a property", r)
		}
	}
	for name, p := range s.Properties {
		if err := p.checkProperty(); err != nil {
			return nil, fmt.Errorf("input schema: %s: %w", name, err)
		}
	}
	return &s, nil
}

func (p *inputSchema) checkProperty() error {
	switch p.Type {
	case "string", "integer", "boolean":
		if p.Items != nil || p.Properties != nil {
			return errors.New("a scalar has no items or properties")
		}
	case "array":
		if p.Items == nil || p.Items.Type == "array" || p.Items.Items != nil {
			return errors.New("an array needs items of a scalar type")
		}
		return p.Items.checkProperty()
	default:
		return fmt.Errorf("type %q is not supported", p.Type)
	}
	return nil
}

// names returns the property names, sorted.
func (s *inputSchema) names() []string {
	out := make([]string, 0, len(s.Properties))
	for n := range s.Properties {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// check validates the arguments of a call to tool and returns "" when
// they satisfy the schema, else one message naming every problem, the
// arguments the tool takes and what to do.
func (s *inputSchema) check(tool string, args any) string {
	obj, ok, why := normalise(args)
	if !ok {
		return fmt.Sprintf("The arguments of %s must be an object of named values, not %s. %s", tool, why, s.takes(tool))
	}
	var problems []string
	unknownOrMissing := false
	for _, name := range sortedKeys(obj) {
		if s.Properties[name] == nil {
			problems = append(problems, unknownArgument(name, s.names()))
			unknownOrMissing = true
		}
	}
	for _, name := range s.Required {
		if _, ok := obj[name]; !ok {
			problems = append(problems, name+" is required")
			unknownOrMissing = true
		}
	}
	for _, name := range s.names() {
		if v, ok := obj[name]; ok {
			problems = append(problems, s.Properties[name].problems(name, v, !slices.Contains(s.Required, name))...)
		}
	}
	if len(problems) == 0 {
		return ""
	}
	msg := strings.Join(problems, "; ") + "."
	if unknownOrMissing {
		msg += " " + s.takes(tool)
	}
	return msg + " Nothing was done: fix the arguments and call " + tool + " again."
}

// takes says which arguments tool takes.
func (s *inputSchema) takes(tool string) string {
	var parts []string
	for _, n := range s.names() {
		if slices.Contains(s.Required, n) {
			n += " (required)"
		}
		parts = append(parts, n)
	}
	if len(parts) == 0 {
		return tool + " takes no arguments."
	}
	return tool + " takes " + list(parts, "and") + "."
}

// problems checks one argument's value.
func (p *inputSchema) problems(name string, v any, optional bool) []string {
	if v == nil {
		msg := name + " must be " + p.kind() + ", not null"
		if optional {
			msg += " (leave it out instead)"
		}
		return []string{msg}
	}
	switch p.Type {
	case "array":
		items, ok := v.([]any)
		if !ok {
			return []string{name + " must be " + p.kind() + ", not " + describe(v)}
		}
		var out []string
		if p.MaxItems != nil && len(items) > *p.MaxItems {
			out = append(out, fmt.Sprintf("%s may hold at most %d items, not %d", name, *p.MaxItems, len(items)))
		}
		for _, it := range items {
			if msg := p.Items.scalarProblem(it); msg != "" {
				out = append(out, fmt.Sprintf("%s contains %s, which is not %s", name, describe(it), p.Items.kind()))
				break
			}
		}
		return out
	default:
		if msg := p.scalarProblem(v); msg != "" {
			return []string{name + " " + msg}
		}
	}
	return nil
}

// scalarProblem checks a string, integer or boolean value; the message
// follows the argument's name ("must be …").
func (p *inputSchema) scalarProblem(v any) string {
	bad := func() string { return "must be " + p.kind() + ", not " + describe(v) }
	switch p.Type {
	case "string":
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		if len(p.Enum) > 0 && !slices.Contains(p.Enum, s) {
			return bad()
		}
		n := utf8.RuneCountInString(s)
		if p.MinLength != nil && n < *p.MinLength {
			if *p.MinLength == 1 {
				return "must not be empty"
			}
			return fmt.Sprintf("must be at least %d characters long", *p.MinLength)
		}
		if p.MaxLength != nil && n > *p.MaxLength {
			return fmt.Sprintf("must be at most %d characters long, not %d", *p.MaxLength, n)
		}
	case "integer":
		num, ok := v.(json.Number)
		if !ok {
			return bad()
		}
		f, err := strconv.ParseFloat(string(num), 64)
		if err != nil || f != math.Trunc(f) || math.IsInf(f, 0) {
			return bad()
		}
		if p.Minimum != nil && f < *p.Minimum || p.Maximum != nil && f > *p.Maximum {
			return bad()
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return bad()
		}
	}
	return ""
}

// kind describes the values p allows, in words.
func (p *inputSchema) kind() string {
	switch p.Type {
	case "string":
		if len(p.Enum) > 0 {
			quoted := make([]string, len(p.Enum))
			for i, e := range p.Enum {
				quoted[i] = strconv.Quote(e)
			}
			if len(quoted) == 2 {
				return quoted[0] + " or " + quoted[1]
			}
			return "one of " + list(quoted, "or")
		}
		return "a string"
	case "integer":
		switch {
		case p.Minimum != nil && p.Maximum != nil:
			return fmt.Sprintf("a whole number from %s to %s", num(*p.Minimum), num(*p.Maximum))
		case p.Minimum != nil:
			return "a whole number of at least " + num(*p.Minimum)
		case p.Maximum != nil:
			return "a whole number of at most " + num(*p.Maximum)
		}
		return "a whole number"
	case "boolean":
		return "true or false"
	case "array":
		if p.Items.Type == "string" && len(p.Items.Enum) == 0 {
			return "a list of strings"
		}
		return "a list of " + p.Items.kind() + " values"
	}
	return p.Type
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// list joins words as "a, b and c".
func list(words []string, conj string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " " + conj + " " + words[len(words)-1]
}

// describe shows a value the way the agent sent it, shortened.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		if len(v) > 40 {
			r := []rune(v)
			if len(r) > 40 {
				v = string(r[:40]) + "…"
			}
		}
		return strconv.Quote(v)
	case json.Number:
		return string(v)
	case bool:
		return strconv.FormatBool(v)
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprint(v)
}

// unknownArgument names an argument the tool does not take, with the
// closest one it does take when that looks like a typo.
func unknownArgument(name string, known []string) string {
	msg := "unknown argument " + strconv.Quote(name)
	best, dist := "", 3
	for _, k := range known {
		d := distance(strings.ToLower(name), k)
		if d < dist || strings.EqualFold(name, k) {
			best, dist = k, d
		}
	}
	if best != "" {
		msg += " (did you mean " + best + "?)"
	}
	return msg
}

// distance is the Levenshtein distance of a and b, counted in bytes.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// normalise turns the arguments of a call into a JSON object whose
// numbers are json.Number, whatever form the transport gave them in; ok
// is false, with a description of what was sent, when they are not an
// object. Missing arguments are an empty object.
func normalise(args any) (obj map[string]any, ok bool, why string) {
	if args == nil {
		return map[string]any{}, true, ""
	}
	// The arguments as the client sent them when mcp-go kept them (every
	// call over the wire), else encoded again.
	b, raw := args.(json.RawMessage)
	if !raw {
		var err error
		if b, err = json.Marshal(args); err != nil {
			return nil, false, "a value that cannot be read"
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, false, "a value that cannot be read"
	}
	switch v := v.(type) {
	case nil:
		return map[string]any{}, true, ""
	case map[string]any:
		return v, true, ""
	default:
		return nil, false, describe(v)
	}
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

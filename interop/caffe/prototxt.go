// Package caffe imports networks trained with Caffe, the framework of
// Levi & Hassner's 2015 age and gender models, into agegender.
//
// A Caffe model comes in two files:
//
//   - a net definition (deploy.prototxt), written in protobuf's text format:
//     the layers, their types, sizes and connections. [ParseText] reads the
//     text format into a generic tree and [ParseNet] extracts the net from it.
//   - the trained weights (.caffemodel), a binary protobuf NetParameter whose
//     layers carry their parameters as BlobProto arrays. [ReadNetParameter]
//     decodes it with nothing but the protobuf wire format, so no generated
//     code or caffe.proto is needed. [ReadBlob] reads a lone BlobProto, such
//     as the mean image (mean.binaryproto).
//
// Both come in two generations: the "V1" format of the paper's files
// (`layers { type: CONVOLUTION }`, field 2 of NetParameter) and the current
// "V2" format (`layer { type: "Convolution" }`, field 100). Both are read;
// types are reported in V2 spelling ("Convolution", "InnerProduct").
//
// This package only reads (and, for test fixtures, writes) Caffe files,
// plus the layout helpers that rearrange Caffe's NCHW/BGR weights for
// agegender's NHWC/RGB (layout.go). Package interop/caffeimport converts
// the paper's nets and VGG-Face into agegender models; package
// interop/vggface runs VGG-Face as a pretrained trunk.
//
// Every reader bounds its work by the size of its input: a truncated,
// corrupt or hostile file gives an error, never a panic or an allocation
// larger than the file.
package caffe

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// MaxTextSize is the largest net definition ParseText accepts (16 MiB; real
// ones are a few kilobytes).
const MaxTextSize = 16 << 20

// maxDepth bounds the nesting of messages in text format, so a hostile
// file cannot exhaust the stack.
const maxDepth = 64

// Kind tells what a text-format field holds.
type Kind int

const (
	// Message is a nested message: `name { ... }`.
	Message Kind = iota
	// String is a quoted string, unescaped: `name: "conv1"`.
	String
	// Number is a numeric literal as written: `alpha: 0.0001`, `-1`, `1e-4`.
	Number
	// Ident is a bare identifier: an enum value or a boolean
	// (`pool: MAX`, `bias_term: false`).
	Ident
)

// Field is one `name: value` or `name { ... }` entry of a text-format
// message. Repeated fields appear once per value, in file order.
type Field struct {
	Name string
	Kind Kind
	// Value holds the scalar (String, Number, Ident) as text.
	Value string
	// Msg holds the fields of a nested message (Kind == Message).
	Msg *Msg
	// Line is the 1-based line where the field starts, for error messages.
	Line int
}

// Msg is a text-format message: an ordered list of fields. The text format
// carries no schema, so the tree keeps every field as written and leaves
// interpretation to the caller.
type Msg struct {
	Fields []Field
}

// All returns the fields named name, in order.
func (m *Msg) All(name string) []Field {
	if m == nil {
		return nil
	}
	var out []Field
	for _, f := range m.Fields {
		if f.Name == name {
			out = append(out, f)
		}
	}
	return out
}

// Get returns the last field named name (protobuf's rule for a non-repeated
// field given twice) and whether there was one.
func (m *Msg) Get(name string) (Field, bool) {
	if m == nil {
		return Field{}, false
	}
	for i := len(m.Fields) - 1; i >= 0; i-- {
		if m.Fields[i].Name == name {
			return m.Fields[i], true
		}
	}
	return Field{}, false
}

// Sub returns the nested message named name, or nil.
func (m *Msg) Sub(name string) *Msg {
	f, ok := m.Get(name)
	if !ok || f.Kind != Message {
		return nil
	}
	return f.Msg
}

// Strings returns the scalar values of the fields named name.
func (m *Msg) Strings(name string) []string {
	var out []string
	for _, f := range m.All(name) {
		if f.Kind != Message {
			out = append(out, f.Value)
		}
	}
	return out
}

// Int parses f as an integer.
func (f Field) Int() (int, error) {
	if f.Kind != Number {
		return 0, fmt.Errorf("line %d: %s: want an integer, got %s", f.Line, f.Name, f.describe())
	}
	v, err := strconv.ParseInt(f.Value, 0, 64)
	if err != nil || v != int64(int(v)) {
		return 0, fmt.Errorf("line %d: %s: %q is not an integer", f.Line, f.Name, f.Value)
	}
	return int(v), nil
}

// Float parses f as a floating-point number (including inf and nan, which
// the text format allows).
func (f Field) Float() (float64, error) {
	if f.Kind != Number && !(f.Kind == Ident && isFloatWord(f.Value)) {
		return 0, fmt.Errorf("line %d: %s: want a number, got %s", f.Line, f.Name, f.describe())
	}
	text := f.Value
	if !isFloatWord(text) {
		text = strings.TrimRight(text, "fF") // C-style float suffix: 1.5f
	}
	v, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return 0, fmt.Errorf("line %d: %s: %q is not a number", f.Line, f.Name, f.Value)
	}
	return v, nil
}

// Bool parses f as a boolean: true/false/True/False/t/f/1/0.
func (f Field) Bool() (bool, error) {
	switch f.Value {
	case "true", "True", "t", "1":
		return true, nil
	case "false", "False", "f", "0":
		return false, nil
	}
	return false, fmt.Errorf("line %d: %s: want true or false, got %s", f.Line, f.Name, f.describe())
}

func (f Field) describe() string {
	switch f.Kind {
	case Message:
		return "a message"
	case String:
		return strconv.Quote(f.Value)
	}
	return f.Value
}

func isFloatWord(s string) bool {
	switch strings.ToLower(strings.TrimPrefix(s, "-")) {
	case "inf", "infinity", "nan":
		return true
	}
	return false
}

// ParseText reads a protobuf text-format document (a .prototxt) into a
// generic tree. It accepts what Caffe's files use and what the text format
// allows around it:
//
//	name: "CaffeNet"            # strings, with C escapes; adjacent ones concatenate
//	input_dim: 227              # numbers: integers, hex, floats, inf, nan
//	pool: MAX                   # identifiers (enums, booleans)
//	layers { ... }              # messages, with or without a colon before {
//	include: < phase: TEST >    # angle brackets as message delimiters
//	dim: [1, 3, 227, 227]       # lists, the short form of repeated fields
//
// Fields may be separated by whitespace, commas or semicolons; comments run
// from # to the end of the line.
func ParseText(r io.Reader) (*Msg, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxTextSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxTextSize {
		return nil, fmt.Errorf("text larger than %d bytes", MaxTextSize)
	}
	p := &textParser{lx: lexer{src: string(data), line: 1}}
	p.next()
	m, err := p.message("", 0)
	if err != nil {
		return nil, err
	}
	return m, nil
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokIdent
	tokNumber
	tokString
	tokPunct
)

type token struct {
	kind tokKind
	text string // identifier, number as written, unescaped string, or punctuation
	line int
}

type lexer struct {
	src  string
	pos  int
	line int
}

// scan returns the next token.
func (l *lexer) scan() (token, error) {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == '\n':
			l.line++
			l.pos++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v':
			l.pos++
		case c == '#':
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.pos++
			}
		default:
			return l.token()
		}
	}
	return token{kind: tokEOF, line: l.line}, nil
}

func (l *lexer) token() (token, error) {
	start, c := l.pos, l.src[l.pos]
	switch {
	case c == '"' || c == '\'':
		s, err := l.str(c)
		return token{kind: tokString, text: s, line: l.line}, err
	case isIdentStart(c):
		for l.pos < len(l.src) && isIdentPart(l.src[l.pos]) {
			l.pos++
		}
		return token{kind: tokIdent, text: l.src[start:l.pos], line: l.line}, nil
	case c == '-' || c == '+' || c == '.' || (c >= '0' && c <= '9'):
		l.pos++
		for l.pos < len(l.src) {
			d := l.src[l.pos]
			if isIdentPart(d) || d == '.' || ((d == '-' || d == '+') && (l.src[l.pos-1] == 'e' || l.src[l.pos-1] == 'E')) {
				l.pos++
				continue
			}
			break
		}
		text := l.src[start:l.pos]
		if text == "-" || text == "+" {
			// A sign before inf/nan: "-inf" is one number.
			if l.pos < len(l.src) && isIdentStart(l.src[l.pos]) {
				for l.pos < len(l.src) && isIdentPart(l.src[l.pos]) {
					l.pos++
				}
				text = l.src[start:l.pos]
				if !isFloatWord(text) {
					return token{}, fmt.Errorf("line %d: unexpected %q", l.line, text)
				}
				return token{kind: tokNumber, text: text, line: l.line}, nil
			}
			return token{}, fmt.Errorf("line %d: lone %q", l.line, text)
		}
		return token{kind: tokNumber, text: strings.TrimPrefix(text, "+"), line: l.line}, nil
	case strings.IndexByte("{}<>[]:,;", c) >= 0:
		l.pos++
		return token{kind: tokPunct, text: string(c), line: l.line}, nil
	}
	return token{}, fmt.Errorf("line %d: unexpected character %q", l.line, c)
}

// str reads a quoted string, handling the escapes of the text format
// (C escapes, octal \NNN, hex \xNN).
func (l *lexer) str(q byte) (string, error) {
	line := l.line
	l.pos++
	var b strings.Builder
	for {
		if l.pos >= len(l.src) || l.src[l.pos] == '\n' {
			return "", fmt.Errorf("line %d: unterminated string", line)
		}
		c := l.src[l.pos]
		if c == q {
			l.pos++
			return b.String(), nil
		}
		if c != '\\' {
			b.WriteByte(c)
			l.pos++
			continue
		}
		if l.pos+1 >= len(l.src) {
			return "", fmt.Errorf("line %d: unterminated string", line)
		}
		e := l.src[l.pos+1]
		l.pos += 2
		switch e {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'a':
			b.WriteByte('\a')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'v':
			b.WriteByte('\v')
		case '\\', '\'', '"', '?':
			b.WriteByte(e)
		case 'x', 'X':
			v, n := 0, 0
			for n < 2 && l.pos < len(l.src) && isHex(l.src[l.pos]) {
				v = v*16 + hexVal(l.src[l.pos])
				l.pos++
				n++
			}
			if n == 0 {
				return "", fmt.Errorf("line %d: \\x without hex digits", line)
			}
			b.WriteByte(byte(v))
		default:
			if e < '0' || e > '7' {
				return "", fmt.Errorf("line %d: unknown escape \\%c", line, e)
			}
			v := int(e - '0')
			for n := 1; n < 3 && l.pos < len(l.src) && l.src[l.pos] >= '0' && l.src[l.pos] <= '7'; n++ {
				v = v*8 + int(l.src[l.pos]-'0')
				l.pos++
			}
			b.WriteByte(byte(v))
		}
	}
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentPart(c byte) bool { return isIdentStart(c) || (c >= '0' && c <= '9') }

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func hexVal(c byte) int {
	switch {
	case c >= 'a':
		return int(c-'a') + 10
	case c >= 'A':
		return int(c-'A') + 10
	}
	return int(c - '0')
}

type textParser struct {
	lx  lexer
	tok token
	err error
}

func (p *textParser) next() {
	if p.err != nil {
		return
	}
	p.tok, p.err = p.lx.scan()
}

func (p *textParser) isPunct(s string) bool { return p.tok.kind == tokPunct && p.tok.text == s }

// message parses fields until the closing delimiter end ("" at top level).
func (p *textParser) message(end string, depth int) (*Msg, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("line %d: messages nested deeper than %d", p.tok.line, maxDepth)
	}
	m := &Msg{}
	for {
		if p.err != nil {
			return nil, p.err
		}
		switch {
		case p.tok.kind == tokEOF:
			if end != "" {
				return nil, fmt.Errorf("line %d: missing %q before the end of the text", p.tok.line, end)
			}
			return m, nil
		case end != "" && p.isPunct(end):
			p.next()
			return m, nil
		case p.isPunct(",") || p.isPunct(";"):
			p.next()
			continue
		case p.tok.kind != tokIdent:
			return nil, fmt.Errorf("line %d: want a field name, got %q", p.tok.line, p.tok.text)
		}
		name, line := p.tok.text, p.tok.line
		p.next()
		colon := p.isPunct(":")
		if colon {
			p.next()
		}
		if p.err != nil {
			return nil, p.err
		}
		switch {
		case p.isPunct("{") || p.isPunct("<"):
			close := "}"
			if p.tok.text == "<" {
				close = ">"
			}
			p.next()
			sub, err := p.message(close, depth+1)
			if err != nil {
				return nil, err
			}
			m.Fields = append(m.Fields, Field{Name: name, Kind: Message, Msg: sub, Line: line})
		case colon && p.isPunct("["):
			p.next()
			for !p.isPunct("]") {
				if p.err != nil {
					return nil, p.err
				}
				f, err := p.listItem(name, depth)
				if err != nil {
					return nil, err
				}
				m.Fields = append(m.Fields, f)
				if p.isPunct(",") {
					p.next()
				} else if !p.isPunct("]") {
					return nil, fmt.Errorf("line %d: %s: want , or ] in list, got %q", p.tok.line, name, p.tok.text)
				}
			}
			p.next()
		case colon:
			f, err := p.scalar(name)
			if err != nil {
				return nil, err
			}
			m.Fields = append(m.Fields, f)
		default:
			return nil, fmt.Errorf("line %d: %s: want ':' or '{' after the field name, got %q", line, name, p.tok.text)
		}
	}
}

func (p *textParser) listItem(name string, depth int) (Field, error) {
	if p.isPunct("{") || p.isPunct("<") {
		close, line := "}", p.tok.line
		if p.tok.text == "<" {
			close = ">"
		}
		p.next()
		sub, err := p.message(close, depth+1)
		if err != nil {
			return Field{}, err
		}
		return Field{Name: name, Kind: Message, Msg: sub, Line: line}, nil
	}
	return p.scalar(name)
}

// scalar parses one value: a string (adjacent strings concatenate), a
// number or an identifier.
func (p *textParser) scalar(name string) (Field, error) {
	f := Field{Name: name, Line: p.tok.line}
	switch p.tok.kind {
	case tokString:
		f.Kind = String
		var b strings.Builder
		for p.tok.kind == tokString && p.err == nil {
			b.WriteString(p.tok.text)
			p.next()
		}
		f.Value = b.String()
		return f, p.err
	case tokNumber:
		f.Kind, f.Value = Number, p.tok.text
		if isFloatWord(f.Value) {
			f.Kind = Number
		}
	case tokIdent:
		f.Kind, f.Value = Ident, p.tok.text
		if isFloatWord(f.Value) {
			f.Kind = Number
		}
	default:
		if p.tok.kind == tokEOF {
			return f, fmt.Errorf("line %d: %s: value missing at the end of the text", p.tok.line, name)
		}
		return f, fmt.Errorf("line %d: %s: want a value, got %q", p.tok.line, name, p.tok.text)
	}
	p.next()
	return f, p.err
}

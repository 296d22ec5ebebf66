package tensor

import (
	"strconv"
	"strings"
)

// dictParser reads the small subset of Python literal syntax that .npy
// headers use: a dict of string keys whose values are strings, True/False,
// tuples of integers, or (for structured dtypes, which are refused later)
// lists.
type dictParser struct {
	s   string
	pos int
}

func (p *dictParser) skipSpace() {
	for p.pos < len(p.s) && strings.IndexByte(" \t\r\n", p.s[p.pos]) >= 0 {
		p.pos++
	}
}

func (p *dictParser) peek() byte {
	p.skipSpace()
	if p.pos >= len(p.s) {
		return 0
	}
	return p.s[p.pos]
}

func (p *dictParser) expect(c byte) error {
	if p.peek() != c {
		return formatErr("header: want %q at offset %d", c, p.pos)
	}
	p.pos++
	return nil
}

func (p *dictParser) dict() (map[string]any, error) {
	if err := p.expect('{'); err != nil {
		return nil, err
	}
	out := map[string]any{}
	for p.peek() != '}' {
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		if err := p.expect(':'); err != nil {
			return nil, err
		}
		val, err := p.value()
		if err != nil {
			return nil, err
		}
		if _, dup := out[key]; dup {
			return nil, formatErr("header: duplicate key %q", key)
		}
		out[key] = val
		if p.peek() == ',' {
			p.pos++
			continue
		}
		if p.peek() != '}' {
			return nil, formatErr("header: want ',' or '}' at offset %d", p.pos)
		}
	}
	p.pos++
	if p.peek() != 0 {
		return nil, formatErr("header: trailing data after the dict")
	}
	return out, nil
}

func (p *dictParser) str() (string, error) {
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", formatErr("header: want a string at offset %d", p.pos)
	}
	end := strings.IndexByte(p.s[p.pos+1:], q)
	if end < 0 {
		return "", formatErr("header: unterminated string")
	}
	v := p.s[p.pos+1 : p.pos+1+end]
	p.pos += end + 2
	return v, nil
}

func (p *dictParser) value() (any, error) {
	switch c := p.peek(); {
	case c == '\'' || c == '"':
		return p.str()
	case c == '(':
		return p.intTuple()
	case c == '[':
		return p.skipList()
	case strings.HasPrefix(p.s[p.pos:], "True"):
		p.pos += 4
		return true, nil
	case strings.HasPrefix(p.s[p.pos:], "False"):
		p.pos += 5
		return false, nil
	}
	return nil, formatErr("header: unexpected value at offset %d", p.pos)
}

func (p *dictParser) intTuple() ([]int64, error) {
	p.pos++ // '('
	out := []int64{}
	for p.peek() != ')' {
		start := p.pos
		for p.pos < len(p.s) && (p.s[p.pos] >= '0' && p.s[p.pos] <= '9' || p.s[p.pos] == '-') {
			p.pos++
		}
		n, err := strconv.ParseInt(p.s[start:p.pos], 10, 64)
		if err != nil {
			return nil, formatErr("header: bad shape dim %q", p.s[start:p.pos])
		}
		if n < 0 {
			return nil, formatErr("header: negative shape dim %d", n)
		}
		if p.pos < len(p.s) && p.s[p.pos] == 'L' { // Python 2 long suffix
			p.pos++
		}
		out = append(out, n)
		if p.peek() == ',' {
			p.pos++
			continue
		}
		if p.peek() != ')' {
			return nil, formatErr("header: want ',' or ')' at offset %d", p.pos)
		}
	}
	p.pos++
	if len(out) > 64 {
		return nil, formatErr("header: %d dims is too many", len(out))
	}
	return out, nil
}

// skipList consumes a bracketed list (a structured dtype description),
// tracking nesting and quotes, and returns it as an opaque []any.
func (p *dictParser) skipList() ([]any, error) {
	depth := 0
	var quote byte
	for ; p.pos < len(p.s); p.pos++ {
		c := p.s[p.pos]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '[' || c == '(':
			depth++
		case c == ']' || c == ')':
			depth--
			if depth == 0 {
				p.pos++
				return []any{}, nil
			}
		}
	}
	return nil, formatErr("header: unterminated list")
}

package trace

import (
	"errors"
	"strconv"
)

// parseFast reads a JSON v1 record laid out exactly as AppendJSON writes
// it (the live stream's records: the same binary wrote them), without
// reflection; ParseJSON falls back to encoding/json for anything else.
func parseFast(b []byte) (Record, bool) {
	p := &fastParser{b: b}
	var r Record
	p.lit(`{"v":`)
	if p.uint() != SchemaVersion {
		return r, false
	}
	p.lit(`,"type":"syscall","seq":`)
	r.Seq = p.uint()
	p.lit(`,"ts_ns":`)
	r.TimeNS = p.int()
	p.lit(`,"pid":`)
	r.Pid = int(p.int())
	p.lit(`,"tid":`)
	r.Tid = int(p.int())
	p.lit(`,"nr":`)
	r.Nr = int(p.int())
	p.lit(`,"name":`)
	r.Name = p.str()
	p.lit(`,"family":`)
	r.Family = p.str()
	p.lit(`,"args":[`)
	r.Args = []string{}
	for p.ok() && !p.peek(']') {
		if len(r.Args) > 0 {
			p.lit(",")
		}
		r.Args = append(r.Args, p.str())
	}
	p.lit(`],"raw":[`)
	for i := range r.Raw {
		if i > 0 {
			p.lit(",")
		}
		p.lit(`"0x`)
		r.Raw[i] = p.hex()
		p.lit(`"`)
	}
	p.lit(`],"disp":`)
	d, ok := ParseDisposition(p.str())
	if !ok {
		return r, false
	}
	r.Disp = d
	p.lit(`,"ret":`)
	if p.peek('n') {
		p.lit("null")
	} else {
		r.Ret, r.Known = p.int(), true
	}
	p.lit(`,"errno":`)
	if p.peek('n') {
		p.lit("null")
	} else {
		p.str()
	}
	p.lit(`,"lat_ns":`)
	r.LatNS = p.int()
	p.lit(`,"paths":[`)
	r.Paths = []PathInfo{}
	for p.ok() && !p.peek(']') {
		if len(r.Paths) > 0 {
			p.lit(",")
		}
		var pi PathInfo
		p.lit(`{"guest":`)
		pi.Guest = p.str()
		p.lit(`,"host":`)
		pi.Host = p.str()
		p.lit(`,"existed":`)
		if p.peek('t') {
			p.lit("true")
			pi.Existed = true
		} else {
			p.lit("false")
		}
		p.lit("}")
		r.Paths = append(r.Paths, pi)
	}
	p.lit("]}")
	for p.i < len(p.b) && (p.b[p.i] == '\n' || p.b[p.i] == '\r' || p.b[p.i] == ' ') {
		p.i++
	}
	return r, p.ok() && p.i == len(p.b)
}

var errSyntax = errors.New("syntax")

type fastParser struct {
	b   []byte
	i   int
	err error
}

func (p *fastParser) ok() bool { return p.err == nil }

func (p *fastParser) peek(c byte) bool { return p.err == nil && p.i < len(p.b) && p.b[p.i] == c }

func (p *fastParser) lit(s string) {
	if p.err != nil {
		return
	}
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		p.err = errSyntax
		return
	}
	p.i += len(s)
}

func (p *fastParser) digits() []byte {
	j := p.i
	if j < len(p.b) && p.b[j] == '-' {
		j++
	}
	for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
		j++
	}
	d := p.b[p.i:j]
	p.i = j
	return d
}

func (p *fastParser) int() int64 {
	if p.err != nil {
		return 0
	}
	v, err := strconv.ParseInt(string(p.digits()), 10, 64)
	if err != nil {
		p.err = err
	}
	return v
}

func (p *fastParser) uint() uint64 {
	if p.err != nil {
		return 0
	}
	v, err := strconv.ParseUint(string(p.digits()), 10, 64)
	if err != nil {
		p.err = err
	}
	return v
}

func (p *fastParser) hex() uint64 {
	if p.err != nil {
		return 0
	}
	j := p.i
	for j < len(p.b) && (p.b[j] >= '0' && p.b[j] <= '9' || p.b[j] >= 'a' && p.b[j] <= 'f') {
		j++
	}
	v, err := strconv.ParseUint(string(p.b[p.i:j]), 16, 64)
	if err != nil {
		p.err = err
	}
	p.i = j
	return v
}

// str reads a string as appendJSONString writes it: the escapes \" \\
// \n \t \r and \u00XX, each standing for one byte.
func (p *fastParser) str() string {
	p.lit(`"`)
	if p.err != nil {
		return ""
	}
	start := p.i
	plain := true
	for p.i < len(p.b) && p.b[p.i] != '"' {
		if p.b[p.i] == '\\' {
			plain = false
			p.i++
		}
		p.i++
	}
	if p.i >= len(p.b) {
		p.err = errSyntax
		return ""
	}
	raw := p.b[start:p.i]
	p.i++
	if plain {
		return string(raw)
	}
	out := make([]byte, 0, len(raw))
	for k := 0; k < len(raw); k++ {
		c := raw[k]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if k+1 >= len(raw) {
			p.err = errSyntax
			return ""
		}
		k++
		switch raw[k] {
		case '"', '\\', '/':
			out = append(out, raw[k])
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case 'r':
			out = append(out, '\r')
		case 'u':
			if k+4 >= len(raw) || raw[k+1] != '0' || raw[k+2] != '0' {
				p.err = errSyntax // beyond one byte: not AppendJSON's
				return ""
			}
			v, err := strconv.ParseUint(string(raw[k+3:k+5]), 16, 8)
			if err != nil {
				p.err = err
				return ""
			}
			out = append(out, byte(v))
			k += 4
		default:
			p.err = errSyntax
			return ""
		}
	}
	return string(out)
}

package guard

import (
	"fmt"
	"regexp/syntax"
	"slices"
	"unsafe"
)

// digitDFA is a deterministic automaton over the digits 0-9 that accepts exactly the strings
// a numbering plan's pattern matches in full. Go's regexp runs a large alternation (such as the
// NANP's list of area codes) through its slower NFA simulation, several microseconds a number;
// walking the automaton costs one table look-up a digit. It is immutable once built.
type digitDFA struct {
	next   [][10]int32 // -1: no match is possible any more
	accept []bool
}

// maxDFAStates bounds an automaton's size; no plan of libphonenumber comes near it.
const maxDFAStates = 1 << 17

// newDigitDFA compiles pattern (RE2 syntax over digits) by subset construction.
func newDigitDFA(pattern string) (*digitDFA, error) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, err
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return nil, err
	}
	seen := make([]uint32, len(prog.Inst)) // generation marks of the closure walk
	gen := uint32(0)
	var closure func(pc uint32, set []uint32) []uint32
	closure = func(pc uint32, set []uint32) []uint32 {
		if seen[pc] == gen {
			return set
		}
		seen[pc] = gen
		switch in := &prog.Inst[pc]; in.Op {
		case syntax.InstAlt, syntax.InstAltMatch:
			set = closure(in.Out, set)
			return closure(in.Arg, set)
		case syntax.InstCapture, syntax.InstNop, syntax.InstEmptyWidth:
			return closure(in.Out, set)
		case syntax.InstFail:
			return set
		}
		return append(set, pc)
	}
	key := func(set []uint32) string {
		slices.Sort(set)
		return unsafe.String((*byte)(unsafe.Pointer(unsafe.SliceData(set))), len(set)*4)
	}
	d := &digitDFA{}
	ids := map[string]int32{}
	var sets [][]uint32
	addState := func(set []uint32) int32 {
		k := key(set)
		if id, ok := ids[k]; ok {
			return id
		}
		id := int32(len(sets))
		ids[string([]byte(k))] = id
		sets = append(sets, slices.Clone(set))
		acc := false
		for _, pc := range set {
			acc = acc || prog.Inst[pc].Op == syntax.InstMatch
		}
		d.accept = append(d.accept, acc)
		d.next = append(d.next, [10]int32{})
		return id
	}
	gen++
	addState(closure(uint32(prog.Start), nil))
	for s := 0; s < len(sets); s++ {
		if len(sets) > maxDFAStates {
			return nil, fmt.Errorf("pattern needs more than %d states", maxDFAStates)
		}
		for digit := range 10 {
			gen++
			var next []uint32
			for _, pc := range sets[s] {
				in := &prog.Inst[pc]
				if in.Op != syntax.InstMatch && in.MatchRune(rune('0'+digit)) {
					next = closure(in.Out, next)
				}
			}
			if len(next) == 0 {
				d.next[s][digit] = -1
				continue
			}
			d.next[s][digit] = addState(next)
		}
	}
	return d, nil
}

// match reports whether the automaton accepts digits in full.
func (d *digitDFA) match(digits []byte) bool {
	s := int32(0)
	for _, c := range digits {
		s = d.next[s][c-'0']
		if s < 0 {
			return false
		}
	}
	return d.accept[s]
}

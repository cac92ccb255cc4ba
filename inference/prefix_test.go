package inference

import "testing"

func seqOf(start, n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(start + i)
	}
	return out
}

func cat(parts ...[]int32) []int32 {
	var out []int32
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestPrefixLookup(t *testing.T) {
	system := seqOf(1000, 40) // two and a half pages
	convA := cat(system, seqOf(1, 30))
	convB := cat(system, seqOf(500, 50))
	pc := newPrefixCache()
	for _, toks := range [][]int32{convA, convB, seqOf(7, 10)} {
		pc.insert(toks, nil)
	}
	if pc.len() != 2 {
		t.Fatalf("%d entries, want 2 (the sub-page one is not kept)", pc.len())
	}
	cases := []struct {
		name   string
		prompt []int32
		want   []int32 // the entry expected, nil for none
		n      int
	}{
		{"next turn of A", cat(convA, seqOf(90, 20)), convA, len(convA)},
		{"B again", convB, convB, len(convB)},
		{"same system prompt, new user", cat(system, seqOf(300, 20)), convA, len(system)},
		{"shares part of a page", cat(system[:20], seqOf(300, 20)), convA, 20},
		{"shares less than a page", cat(system[:10], seqOf(300, 30)), nil, 0},
		{"unrelated", seqOf(2000, 64), nil, 0},
	}
	for _, tc := range cases {
		e, n := pc.lookup(tc.prompt)
		switch {
		case tc.want == nil && e != nil:
			t.Errorf("%s: found an entry of %d tokens", tc.name, len(e.tokens))
		case tc.want != nil && (e == nil || n != tc.n || (tc.n > len(system) && len(e.tokens) != len(tc.want))):
			t.Errorf("%s: got entry %v with %d shared, want %d shared", tc.name, e != nil, n, tc.n)
		}
	}
}

func TestPrefixInsert(t *testing.T) {
	base := seqOf(1, 40)
	pc := newPrefixCache()
	if _, ok := pc.insert(base, nil); !ok {
		t.Fatal("first insert refused")
	}
	// A longer conversation supersedes its earlier turn.
	longer := cat(base, seqOf(100, 20))
	dropped, ok := pc.insert(longer, nil)
	if !ok || len(dropped) != 1 || len(dropped[0].tokens) != len(base) || pc.len() != 1 {
		t.Fatalf("insert of an extension: ok=%v dropped=%d entries=%d", ok, len(dropped), pc.len())
	}
	// A prefix of what is cached adds nothing.
	if dropped, ok := pc.insert(base[:33], nil); ok || len(dropped) != 0 || pc.len() != 1 {
		t.Fatalf("insert of a cached prefix: ok=%v dropped=%d", ok, len(dropped))
	}
	// A branch is kept beside it; the oldest is the first to go.
	branch := cat(base, seqOf(900, 20))
	if _, ok := pc.insert(branch, nil); !ok || pc.len() != 2 {
		t.Fatal("branch not kept")
	}
	if o := pc.oldest(nil); len(o.tokens) != len(longer) || o.tokens[45] != longer[45] {
		t.Error("oldest is not the first conversation")
	}
	pc.lookup(longer) // touch
	if o := pc.oldest(nil); o.tokens[45] != branch[45] {
		t.Error("lookup did not refresh the entry")
	}
	keep := pc.oldest(nil)
	if o := pc.oldest(keep); o == keep || o == nil {
		t.Error("oldest(keep) returned keep")
	}
	for e := pc.oldest(nil); e != nil; e = pc.oldest(nil) {
		pc.remove(e)
	}
	if len(pc.index) != 0 {
		t.Errorf("%d hashes left in the index after removing every entry", len(pc.index))
	}
}

func TestPageHashes(t *testing.T) {
	a := seqOf(1, 50)
	b := cat(seqOf(1, 20), seqOf(5000, 30))
	ha, hb := pageHashes(a), pageHashes(b)
	if len(ha) != 3 || len(hb) != 3 {
		t.Fatalf("got %d and %d page hashes, want 3", len(ha), len(hb))
	}
	if ha[0] != hb[0] || ha[1] == hb[1] || ha[2] == hb[2] {
		t.Error("page hashes do not follow the shared prefix")
	}
}

func TestWaitQueue(t *testing.T) {
	var q waitQueue
	a, b, c := &sequence{}, &sequence{}, &sequence{}
	q.push(a)
	q.push(b)
	q.pushFront(c)
	if q.len() != 3 || q.items[0] != c || q.items[1] != a || q.items[2] != b {
		t.Fatal("pushFront did not put the sequence first")
	}
	if q.removeAt(1) != a || q.len() != 2 || q.items[1] != b {
		t.Fatal("removeAt broke the order")
	}
}

func TestKVPool(t *testing.T) {
	p := newKVPool(100)
	if !p.take(60) || p.take(50) || !p.take(40) {
		t.Fatal("take does not respect the budget")
	}
	p.give(100)
	if used, total := p.usage(); used != 0 || total != 100 {
		t.Errorf("usage %d/%d after giving everything back", used, total)
	}
	if pagesFor(0) != 0 || pagesFor(1) != 1 || pagesFor(pageTokens) != 1 || pagesFor(pageTokens+1) != 2 {
		t.Error("pagesFor rounds wrongly")
	}
}

// FuzzPrefixCache checks lookup against a brute-force search over random
// insertions and removals drawn from a small alphabet (so prefixes are
// shared often): the length found must be the longest shared prefix among
// entries sharing at least one full page.
func FuzzPrefixCache(f *testing.F) {
	f.Add([]byte{40, 1, 2, 3, 200, 50, 1, 2, 9, 17, 33})
	f.Add([]byte{16, 0, 0, 0, 16, 0, 0, 0, 255, 20})
	f.Fuzz(func(t *testing.T, ops []byte) {
		pc := newPrefixCache()
		var live [][]int32
		next := func(i *int) byte {
			if *i >= len(ops) {
				return 0
			}
			*i++
			return ops[*i-1]
		}
		for i := 0; i < len(ops); {
			n := int(next(&i)) % 70
			seed := next(&i)
			toks := make([]int32, n)
			for j := range toks {
				toks[j] = int32((int(seed) + j*j/7) % 3) // few distinct values
				if j > int(seed)%40 {
					toks[j] = int32(seed % 5)
				}
			}
			switch op := next(&i) % 3; op {
			case 0, 1:
				dropped, ok := pc.insert(toks, nil)
				for _, d := range dropped {
					live = removeTokens(live, d.tokens)
				}
				if ok {
					live = append(live, toks)
				}
			case 2:
				if e := pc.oldest(nil); e != nil {
					pc.remove(e)
					live = removeTokens(live, e.tokens)
				}
			}
			if pc.len() != len(live) {
				t.Fatalf("cache holds %d entries, the model %d", pc.len(), len(live))
			}
			e, got := pc.lookup(toks)
			want := 0
			for _, l := range live {
				if c := commonPrefix(l, toks); c >= pageTokens {
					want = max(want, c)
				}
			}
			if got != want || (e == nil) != (want == 0) {
				t.Fatalf("lookup found %d shared tokens, brute force %d", got, want)
			}
		}
	})
}

func removeTokens(live [][]int32, toks []int32) [][]int32 {
	for i, l := range live {
		if &l[0] == &toks[0] {
			return append(live[:i], live[i+1:]...)
		}
	}
	return live
}

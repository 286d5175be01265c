package content

import "sync"

// recent remembers the last keys put, so that a content put twice in a
// row is written once. It forgets the oldest first. Safe for concurrent
// use.
type recent struct {
	mu   sync.Mutex
	set  map[string]struct{}
	ring []string
	next int
}

func newRecent(n int) *recent {
	return &recent{set: make(map[string]struct{}, n), ring: make([]string, n)}
}

func (r *recent) has(k string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.set[k]
	return ok
}

func (r *recent) add(k string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.set[k]; ok {
		return
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.next] = k
	r.set[k] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
}

// remove forgets k. Its slot in the ring stays until reused, which may
// then forget a later add of k early: that costs one write more.
func (r *recent) remove(k string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.set, k)
}

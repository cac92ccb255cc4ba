package inference

import "sync"

// waitQueue holds the sequences waiting for admission, oldest first. Its
// owner locks it.
type waitQueue struct {
	items []*sequence
}

func (q *waitQueue) len() int { return len(q.items) }

func (q *waitQueue) push(s *sequence) { q.items = append(q.items, s) }

// pushFront puts a preempted sequence back at the head, so it resumes before
// anything that arrived after it.
func (q *waitQueue) pushFront(s *sequence) {
	q.items = append(q.items, nil)
	copy(q.items[1:], q.items)
	q.items[0] = s
}

// removeAt takes out the i-th sequence.
func (q *waitQueue) removeAt(i int) *sequence {
	s := q.items[i]
	q.items = append(q.items[:i], q.items[i+1:]...)
	return s
}

// keyLimiter bounds how many sequences of one API key run at once across the
// engine, so one tenant cannot take every slot. A zero limit means none. It
// counts running sequences whatever the limit, so a limit set by a reload
// holds against the sequences already running.
type keyLimiter struct {
	mu      sync.Mutex
	limit   int
	running map[string]int
}

func newKeyLimiter(limit int) *keyLimiter {
	return &keyLimiter{limit: limit, running: map[string]int{}}
}

// acquire counts one more running sequence for key if the limit allows.
func (k *keyLimiter) acquire(key string) bool {
	if key == "" {
		return true
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.limit > 0 && k.running[key] >= k.limit {
		return false
	}
	k.running[key]++
	return true
}

// release undoes one acquire.
func (k *keyLimiter) release(key string) {
	if key == "" {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.running[key] <= 1 {
		delete(k.running, key)
	} else {
		k.running[key]--
	}
}

// setLimit changes the limit; sequences over a lowered one finish, and new
// ones wait until their key is under it.
func (k *keyLimiter) setLimit(limit int) {
	k.mu.Lock()
	k.limit = limit
	k.mu.Unlock()
}

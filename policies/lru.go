package policies

var _ Policy[int] = (*lru[int])(nil)

// lru keeps its nodes in one list from least (head) to most (tail) recently
// used.
type lru[V any] struct {
	list bucket[V]
	len  int
}

func newLRU[V any]() *lru[V] {
	l := &lru[V]{}
	l.list.init(&l.list)
	return l
}

func (l *lru[V]) owns(n *Node[V]) bool { return n.bucket == &l.list }

func (l *lru[V]) Add(n *Node[V]) {
	mustBeUnlinked(n)
	l.list.pushBack(n)
	l.len++
}

func (l *lru[V]) Touch(n *Node[V]) {
	if !l.owns(n) || n.next == &l.list.root {
		return // not ours, or already the most recent
	}
	l.list.moveToBack(n)
}

func (l *lru[V]) Remove(n *Node[V]) {
	if !l.owns(n) {
		return
	}
	unlink(n)
	l.len--
}

func (l *lru[V]) Replace(old, n *Node[V]) {
	if !l.owns(old) {
		l.Add(n)
		return
	}
	mustBeUnlinked(n)
	replaceNode(old, n)
}

func (l *lru[V]) Victim() *Node[V] {
	if l.len == 0 {
		return nil
	}
	return l.list.root.next
}

func (l *lru[V]) Len() int { return l.len }

func (l *lru[V]) Clear() {
	for n := l.list.root.next; n != &l.list.root; {
		next := n.next
		n.prev, n.next, n.bucket = nil, nil, nil
		n = next
	}
	l.list.init(&l.list)
	l.len = 0
}

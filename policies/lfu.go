package policies

var _ Policy[int] = (*lfu[int])(nil)

// lfu is the O(1) LFU of Shah, Mitra and Matani (2010): a ring of buckets in
// increasing use count, each holding its nodes in the order they reached that
// count. The victim is the head of the lowest bucket, so ties go to the entry
// that reached the lowest count first, as the original memoizer's O(n) LFU
// does. Buckets are shared by all nodes with a count; a node carries only its
// links and its bucket pointer.
type lfu[V any] struct {
	root bucket[V] // sentinel of the bucket ring; root.next has the lowest count
	len  int
	// spare is one emptied bucket kept for reuse, so that the common Touch
	// of the only node with a count allocates nothing.
	spare *bucket[V]
}

func newLFU[V any]() *lfu[V] {
	l := &lfu[V]{}
	l.root.init(&l.root)
	l.root.prev, l.root.next = &l.root, &l.root
	return l
}

func (l *lfu[V]) owns(n *Node[V]) bool { return n.bucket != nil && n.bucket.owner == &l.root }

// bucketAfter returns the bucket for count, which must be at.count+1 (or 1
// when at is the root), creating it right after at if missing.
func (l *lfu[V]) bucketAfter(at *bucket[V], count int) *bucket[V] {
	if next := at.next; next != &l.root && next.count == count {
		return next
	}
	b := l.spare
	if b != nil {
		l.spare = nil
	} else {
		b = new(bucket[V])
	}
	b.init(&l.root)
	b.count = count
	b.prev, b.next = at, at.next
	at.next.prev = b
	at.next = b
	return b
}

// drop unlinks b from the bucket ring if it has become empty.
func (l *lfu[V]) drop(b *bucket[V]) {
	if !b.empty() {
		return
	}
	b.prev.next = b.next
	b.next.prev = b.prev
	b.prev, b.next = nil, nil
	l.spare = b
}

func (l *lfu[V]) Add(n *Node[V]) {
	mustBeUnlinked(n)
	l.bucketAfter(&l.root, 1).pushBack(n)
	l.len++
}

func (l *lfu[V]) Touch(n *Node[V]) {
	if !l.owns(n) {
		return
	}
	from := n.bucket
	to := l.bucketAfter(from, from.count+1)
	unlink(n)
	to.pushBack(n)
	l.drop(from)
}

func (l *lfu[V]) Remove(n *Node[V]) {
	if !l.owns(n) {
		return
	}
	from := n.bucket
	unlink(n)
	l.len--
	l.drop(from)
}

func (l *lfu[V]) Replace(old, n *Node[V]) {
	if !l.owns(old) {
		l.Add(n)
		return
	}
	mustBeUnlinked(n)
	replaceNode(old, n)
}

func (l *lfu[V]) Victim() *Node[V] {
	if l.len == 0 {
		return nil
	}
	return l.root.next.root.next
}

func (l *lfu[V]) Len() int { return l.len }

func (l *lfu[V]) Clear() {
	for b := l.root.next; b != &l.root; {
		for n := b.root.next; n != &b.root; {
			next := n.next
			n.prev, n.next, n.bucket = nil, nil, nil
			n = next
		}
		b = b.next
	}
	l.root.prev, l.root.next = &l.root, &l.root
	l.len = 0
}

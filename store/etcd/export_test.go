package etcd

// RewatchFrom makes s's watch start again from revision rev+1, as after a
// long disconnection; Reloads counts the mirror's reloads after compaction.
func RewatchFrom(s *Store, rev int64) { s.rewatch <- rev }

func Reloads(s *Store) int64 { return s.reloads.Load() }

// MirrorRev is the revision s's mirror has applied.
func MirrorRev(s *Store) int64 { rev, _ := s.m.current(); return rev }

// ProgressRequests counts the progress notifications s has asked for.
func ProgressRequests(s *Store) int64 { return s.progressRequests.Load() }

package enforcer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// The ratio sketch is a fixed log-spaced histogram of actual/base: 8 bins
// per doubling (each bin spans 9%) from 2^-8 to 2^12, ratios outside
// clamped to the end bins. Fixed bins make sketches mergeable by adding
// counts, and a quantile read from a bin's upper edge is never below the
// samples in it.
const (
	sketchBinsPerOctave = 8
	sketchMinLog2       = -8
	sketchBins          = 20 * sketchBinsPerOctave
)

// Holds are calibrated in two classes, because the ratio differs in kind
// between them: a call expected to read part of its prompt from the cache
// (its base prices that part at the cache-read price, so a miss costs up
// to 10x) and a call expected to read nothing (a session's first call).
const (
	classUncached = 0
	classCached   = 1
	calibClasses  = 2
)

// calibStats is what one key learned. Counts halve past the cap, so the
// sketch forgets slowly and old history weighs less (recency). Fixed size:
// about 1.4 KiB.
type calibStats struct {
	bins [calibClasses][sketchBins]uint32
	n    [calibClasses]uint64 // sum of each class's bins
	// holds and misses count calibrated holds that settled, and those that
	// ended below the actual: the realized miss rate corrects the quantile.
	holds, misses [calibClasses]uint64
	// Output tokens of calls that reported usage.
	outSum, outN uint64
	// Share (parts per million) of the previous prompt of the same session
	// read from the cache, over calls that had a recent previous call.
	cacheSharePPM, cacheN uint64
	// minCached is the smallest cache read seen (0: none): a provider
	// cached a prefix that short, so shorter ones can be cached too.
	minCached int64
}

func sketchBin(ratio float64) int {
	if !(ratio > 0) { // also NaN
		return 0
	}
	i := int(math.Floor(math.Log2(ratio)*sketchBinsPerOctave)) - sketchMinLog2*sketchBinsPerOctave
	return min(max(i, 0), sketchBins-1)
}

// sketchUpper is the upper edge of bin i.
func sketchUpper(i int) float64 {
	return math.Exp2(float64(i+1)/sketchBinsPerOctave + sketchMinLog2)
}

func (s *calibStats) add(class int, ratio float64) {
	s.bins[class][sketchBin(ratio)]++
	s.n[class]++
}

func (s *calibStats) count(class int) int64 { return int64(s.n[class]) }

// quantile reads the q-quantile of a class's ratios, with priorWeight
// pseudo samples at priorRatio mixed in (they matter only while samples
// are few).
func (s *calibStats) quantile(class int, q, priorRatio float64, priorWeight int) float64 {
	pb := sketchBin(priorRatio)
	total := s.n[class] + uint64(priorWeight)
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, c := range s.bins[class] {
		seen += uint64(c)
		if i == pb {
			seen += uint64(priorWeight)
		}
		if seen >= rank && seen > 0 {
			return sketchUpper(i)
		}
	}
	return sketchUpper(sketchBins - 1)
}

// effectiveQuantile raises q by how far the class's realized miss rate is
// above its target 1-q, so holds meet the target even while the ratios
// drift (never lowered below q; at most maxQuantile).
func (s *calibStats) effectiveQuantile(class int, q float64) float64 {
	if s.holds[class] == 0 {
		return q
	}
	missRate := float64(s.misses[class]) / float64(s.holds[class])
	return min(q+max(missRate-(1-q), 0), maxQuantile)
}

// maxQuantile bounds the corrected quantile: the largest ratios are the
// rarest and least repeatable.
const maxQuantile = 0.999

// merge adds o's counts and halves each part whose count passes cap.
func (s *calibStats) merge(o *calibStats, capN int) {
	for c := range calibClasses {
		for i, v := range o.bins[c] {
			s.bins[c][i] = satAdd32(s.bins[c][i], v)
		}
		s.n[c] += o.n[c]
		s.holds[c] += o.holds[c]
		s.misses[c] += o.misses[c]
		for s.n[c] > uint64(capN) || s.holds[c] > uint64(capN) {
			s.halveClass(c)
		}
	}
	s.outSum += o.outSum
	s.outN += o.outN
	s.cacheSharePPM += o.cacheSharePPM
	s.cacheN += o.cacheN
	if o.minCached > 0 && (s.minCached == 0 || o.minCached < s.minCached) {
		s.minCached = o.minCached
	}
	for s.outN > uint64(capN) || s.cacheN > uint64(capN) {
		s.outSum, s.outN = s.outSum/2, s.outN/2
		s.cacheSharePPM, s.cacheN = s.cacheSharePPM/2, s.cacheN/2
	}
}

func (s *calibStats) halveClass(c int) {
	s.n[c] = 0
	for i := range s.bins[c] {
		s.bins[c][i] /= 2
		s.n[c] += uint64(s.bins[c][i])
	}
	s.holds[c], s.misses[c] = s.holds[c]/2, s.misses[c]/2
}

func satAdd32(a, b uint32) uint32 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint32
}

// calibEncodingV1 starts every encoded value.
const calibEncodingV1 = 1

// encode writes s compactly: a version, the scalars, then each non-empty
// bin as (class x sketchBins + index, count), all as uvarints (at most
// about 2 KB, under MaxCalibrationValueBytes).
func (s *calibStats) encode() []byte {
	b := make([]byte, 0, 64)
	b = append(b, calibEncodingV1)
	for _, v := range s.scalars() {
		b = binary.AppendUvarint(b, v)
	}
	for c := range calibClasses {
		for i, v := range s.bins[c] {
			if v > 0 {
				b = binary.AppendUvarint(b, uint64(c*sketchBins+i))
				b = binary.AppendUvarint(b, uint64(v))
			}
		}
	}
	return b
}

const calibScalars = 9

func (s *calibStats) scalars() [calibScalars]uint64 {
	return [...]uint64{s.outSum, s.outN, s.cacheSharePPM, s.cacheN, uint64(s.minCached),
		s.holds[0], s.misses[0], s.holds[1], s.misses[1]}
}

var errCalibEncoding = errors.New("calibration value: bad encoding")

// decodeCalibStats reads what encode wrote.
func decodeCalibStats(b []byte) (*calibStats, error) {
	if len(b) == 0 || b[0] != calibEncodingV1 {
		return nil, fmt.Errorf("%w: unknown version", errCalibEncoding)
	}
	b = b[1:]
	var s calibStats
	var v [calibScalars]uint64
	for i := range v {
		x, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, fmt.Errorf("%w: truncated header", errCalibEncoding)
		}
		v[i], b = x, b[n:]
	}
	if v[4] > math.MaxInt64 {
		return nil, fmt.Errorf("%w: min cached tokens out of range", errCalibEncoding)
	}
	s.outSum, s.outN, s.cacheSharePPM, s.cacheN, s.minCached = v[0], v[1], v[2], v[3], int64(v[4])
	s.holds[0], s.misses[0], s.holds[1], s.misses[1] = v[5], v[6], v[7], v[8]
	for len(b) > 0 {
		i, n := binary.Uvarint(b)
		if n <= 0 || i >= calibClasses*sketchBins {
			return nil, fmt.Errorf("%w: bad bin index", errCalibEncoding)
		}
		b = b[n:]
		c, m := binary.Uvarint(b)
		if m <= 0 || c > math.MaxUint32 {
			return nil, fmt.Errorf("%w: bad bin count", errCalibEncoding)
		}
		b = b[m:]
		cl, bin := i/sketchBins, i%sketchBins
		s.bins[cl][bin] = satAdd32(s.bins[cl][bin], uint32(c))
		s.n[cl] += c
	}
	return &s, nil
}

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

// calibStats is what one key learned. Counts halve past the cap, so the
// sketch forgets slowly and old history weighs less (recency).
type calibStats struct {
	bins [sketchBins]uint32
	n    uint64 // sum of bins
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

func (s *calibStats) add(ratio float64) {
	s.bins[sketchBin(ratio)]++
	s.n++
}

func (s *calibStats) count() int64 { return int64(s.n) }

// quantile reads the q-quantile of the ratios, with priorWeight pseudo
// samples at priorRatio mixed in (they matter only while samples are few).
func (s *calibStats) quantile(q, priorRatio float64, priorWeight int) float64 {
	pb := sketchBin(priorRatio)
	total := s.n + uint64(priorWeight)
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i := range s.bins {
		seen += uint64(s.bins[i])
		if i == pb {
			seen += uint64(priorWeight)
		}
		if seen >= rank && seen > 0 {
			return sketchUpper(i)
		}
	}
	return sketchUpper(sketchBins - 1)
}

// merge adds o's counts and halves while the sample count passes cap.
func (s *calibStats) merge(o *calibStats, capN int) {
	for i, c := range o.bins {
		s.bins[i] = satAdd32(s.bins[i], c)
	}
	s.n += o.n
	s.outSum += o.outSum
	s.outN += o.outN
	s.cacheSharePPM += o.cacheSharePPM
	s.cacheN += o.cacheN
	if o.minCached > 0 && (s.minCached == 0 || o.minCached < s.minCached) {
		s.minCached = o.minCached
	}
	for s.n > uint64(capN) || s.outN > uint64(capN) || s.cacheN > uint64(capN) {
		s.halve()
	}
}

func (s *calibStats) halve() {
	s.n = 0
	for i := range s.bins {
		s.bins[i] /= 2
		s.n += uint64(s.bins[i])
	}
	s.outSum, s.outN = s.outSum/2, s.outN/2
	s.cacheSharePPM, s.cacheN = s.cacheSharePPM/2, s.cacheN/2
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
// bin as (index, count), all as uvarints (at most ~1.2 KB).
func (s *calibStats) encode() []byte {
	b := make([]byte, 0, 64)
	b = append(b, calibEncodingV1)
	for _, v := range [...]uint64{s.outSum, s.outN, s.cacheSharePPM, s.cacheN, uint64(s.minCached)} {
		b = binary.AppendUvarint(b, v)
	}
	for i, c := range s.bins {
		if c > 0 {
			b = binary.AppendUvarint(b, uint64(i))
			b = binary.AppendUvarint(b, uint64(c))
		}
	}
	return b
}

var errCalibEncoding = errors.New("calibration value: bad encoding")

// decodeCalibStats reads what encode wrote.
func decodeCalibStats(b []byte) (*calibStats, error) {
	if len(b) == 0 || b[0] != calibEncodingV1 {
		return nil, fmt.Errorf("%w: unknown version", errCalibEncoding)
	}
	b = b[1:]
	var s calibStats
	var scalars [5]uint64
	for i := range scalars {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, fmt.Errorf("%w: truncated header", errCalibEncoding)
		}
		scalars[i], b = v, b[n:]
	}
	if scalars[4] > math.MaxInt64 {
		return nil, fmt.Errorf("%w: min cached tokens out of range", errCalibEncoding)
	}
	s.outSum, s.outN, s.cacheSharePPM, s.cacheN, s.minCached = scalars[0], scalars[1], scalars[2], scalars[3], int64(scalars[4])
	for len(b) > 0 {
		i, n := binary.Uvarint(b)
		if n <= 0 || i >= sketchBins {
			return nil, fmt.Errorf("%w: bad bin index", errCalibEncoding)
		}
		b = b[n:]
		c, m := binary.Uvarint(b)
		if m <= 0 || c > math.MaxUint32 {
			return nil, fmt.Errorf("%w: bad bin count", errCalibEncoding)
		}
		b = b[m:]
		s.bins[i] = satAdd32(s.bins[i], uint32(c))
		s.n += c
	}
	return &s, nil
}

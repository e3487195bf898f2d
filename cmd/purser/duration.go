package main

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
)

// durationHook decodes time.Duration config values from text with a unit
// ("300s", "5m") only. Without it, mapstructure reads a bare number
// (reservations.ttl: 300) as nanoseconds, so every hold would expire at
// once. A bare 0 is accepted: it means the same in every unit.
func durationHook(_ reflect.Type, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeFor[time.Duration]() {
		return data, nil
	}
	v := reflect.ValueOf(data)
	switch v.Kind() {
	case reflect.String:
		s := strings.TrimSpace(v.String())
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return bareNumber(s)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration; write a number with a unit, e.g. \"300s\", \"5m\", \"1h30m\"", s)
		}
		return d, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		if v.Type() == to { // already a Duration (flag overrides, defaults)
			return data, nil
		}
		return bareNumber(fmt.Sprint(data))
	}
	return data, nil
}

func bareNumber(s string) (any, error) {
	if f, err := strconv.ParseFloat(s, 64); err == nil && f == 0 {
		return time.Duration(0), nil
	}
	return nil, fmt.Errorf("a bare number (%s) has no unit and would be read as nanoseconds; write %q (units: ms, s, m, h)", s, s+"s")
}

// decodeProblems turns mapstructure's joined errors into a ConfigError with
// one "key: message" line each, like every other configuration problem.
func decodeProblems(err error) error {
	var p problems
	var walk func(error)
	walk = func(e error) {
		var de *mapstructure.DecodeError
		switch u := e.(type) {
		case *mapstructure.DecodeError:
			if errors.As(u.Unwrap(), &de) {
				walk(u.Unwrap())
				return
			}
			p.add(u.Name(), "%v", u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			if errors.As(e, &de) {
				walk(u.Unwrap())
				return
			}
			p.errs = append(p.errs, e)
		default:
			p.errs = append(p.errs, e)
		}
	}
	walk(err)
	return p.err()
}

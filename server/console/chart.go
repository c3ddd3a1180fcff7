package console

import (
	"encoding/json"
	"math"
	"strconv"
)

// chart is a grouped bar chart laid out in Go, so the template only
// places <rect> and <text> elements: no script draws it.
type chart struct {
	Width, Height int
	Bars          []bar
	Labels        []label
	Grid          []gridLine
	Max           float64
}

type bar struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

type label struct {
	X, Y float64
	Text string
}

type gridLine struct {
	Y    float64
	Text string
}

const (
	chartW, chartH       = 640, 240
	chartLeft, chartBase = 56.0, 200.0
	chartTop             = 16.0
)

func usageChart(usage []usageJSON) chart {
	c := chart{Width: chartW, Height: chartH}
	for _, u := range usage {
		c.Max = math.Max(c.Max, math.Max(u.Reads, math.Max(u.Writes, u.Errors)))
	}
	top := niceCeil(c.Max)
	plotH := chartBase - chartTop
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		c.Grid = append(c.Grid, gridLine{Y: chartBase - plotH*float64(i)/4, Text: formatCount(v)})
	}
	if len(usage) == 0 {
		return c
	}
	slot := (float64(chartW) - chartLeft - 8) / float64(len(usage))
	bw := slot / 4
	series := []struct {
		class, name string
		v           func(usageJSON) float64
	}{
		{"reads", "reads", func(u usageJSON) float64 { return u.Reads }},
		{"writes", "writes", func(u usageJSON) float64 { return u.Writes }},
		{"errors", "errors", func(u usageJSON) float64 { return u.Errors }},
	}
	for i, u := range usage {
		x0 := chartLeft + slot*float64(i) + bw/2
		for j, s := range series {
			v := s.v(u)
			h := plotH * v / top
			c.Bars = append(c.Bars, bar{X: x0 + bw*float64(j), Y: chartBase - h, W: bw - 2, H: h, Class: s.class,
				Title: u.Month + ": " + formatCount(v) + " " + s.name})
		}
		c.Labels = append(c.Labels, label{X: x0 + bw*1.5, Y: chartBase + 18, Text: u.Month})
	}
	return c
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten (at least 4, so
// the four grid steps are whole numbers).
func niceCeil(v float64) float64 {
	if v <= 4 {
		return 4
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 4, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func formatCount(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func prettyJSON(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return ""
	}
	return string(b)
}

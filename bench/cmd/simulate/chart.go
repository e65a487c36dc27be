package main

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// drawChart writes <dir>/<trace>.png and .svg: hit ratio against cache
// size, one line per policy.
func drawChart(dir, file string, sizes []int, names []string, results map[job]float64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	sizes = slices.Clone(sizes)
	slices.Sort(sizes)
	p := plot.New()
	p.Title.Text = file
	p.X.Label.Text = "cache size (entries)"
	p.Y.Label.Text = "hit ratio (%)"
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	for i, name := range names {
		pts := make(plotter.XYs, len(sizes))
		for k, s := range sizes {
			pts[k].X = float64(s)
			pts[k].Y = results[job{file, s, name}]
		}
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		c := plotutil.Color(i)
		l.Color, sc.Color = c, c
		sc.Shape = plotutil.Shape(i)
		if name == "opt" {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			l.Color, sc.Color = color.Gray{Y: 90}, color.Gray{Y: 90}
		}
		if strings.HasPrefix(name, "memo-w-tinylfu") {
			l.Width = vg.Points(2.5)
		}
		p.Add(l, sc)
		p.Legend.Add(name, l, sc)
	}
	base := filepath.Join(dir, strings.NewReplacer("/", "_", ".trace.gz", "", ".lis.gz", "", ".gz", "").Replace(file))
	for _, ext := range []string{".png", ".svg"} {
		if err := p.Save(8*vg.Inch, 5*vg.Inch, base+ext); err != nil {
			return fmt.Errorf("chart %s: %w", base+ext, err)
		}
	}
	return nil
}

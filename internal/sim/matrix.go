package sim

// A MatrixRow is one row of the hit-ratio matrix (shared/traces/MATRIX.md):
// a trace replayed at a size, with every peer's measured hit ratio in
// percent, the best of every capacity-respecting peer measured, and
// Belady's optimum.
type MatrixRow struct {
	File                                  string // relative to the traces folder
	Size                                  int
	Otter, Theine, LRU, ARC, TwoQ, S3FIFO float64
	Best, OPT                             float64
}

// Matrix is the 29-row matrix of MATRIX.md, in its order.
var Matrix = []MatrixRow{
	{"lirs/gli.trace.gz", 500, 33.24, 27.98, 0.95, 9.46, 1.40, 16.09, 33.24, 34.33},
	{"lirs/gli.trace.gz", 1000, 50.44, 40.70, 11.21, 19.40, 30.86, 35.03, 50.44, 53.15},
	{"lirs/gli.trace.gz", 2000, 57.96, 57.95, 57.41, 57.41, 57.41, 52.14, 57.96, 57.96},
	{"lirs/multi2.trace.gz", 500, 47.60, 49.56, 35.98, 49.23, 39.67, 49.17, 49.56, 53.62},
	{"lirs/multi2.trace.gz", 1000, 56.74, 57.65, 47.80, 50.77, 50.75, 49.80, 57.65, 62.16},
	{"lirs/multi2.trace.gz", 2000, 69.09, 68.80, 49.00, 64.13, 61.59, 63.13, 69.09, 74.65},
	{"lirs/sprite.trace.gz", 200, 48.77, 47.32, 39.88, 42.64, 44.24, 46.20, 48.77, 68.90},
	{"lirs/sprite.trace.gz", 500, 77.06, 75.34, 78.30, 77.53, 78.32, 78.46, 78.46, 87.89},
	{"lirs/loop.trace.gz", 500, 48.72, 46.13, 0.00, 0.00, 0.00, 0.00, 48.72, 49.36},
	{"lirs/loop.trace.gz", 1000, 97.26, 97.90, 0.00, 0.10, 78.34, 89.37, 98.43, 98.71},
	{"lirs/2_pools.trace.gz", 100, 46.85, 47.08, 21.95, 46.42, 38.45, 44.13, 47.90, 50.76},
	{"lirs/2_pools.trace.gz", 1000, 54.39, 54.38, 54.41, 54.38, 54.40, 54.37, 54.41, 68.52},
	{"lirs/cs.trace.gz", 100, 2.08, 3.51, 1.83, 1.83, 1.83, 1.83, 3.51, 7.73},
	{"lirs/cs.trace.gz", 500, 28.92, 29.18, 1.83, 1.83, 1.83, 1.83, 29.18, 31.32},
	{"lirs/ps.trace.gz", 200, 44.21, 46.12, 12.19, 33.40, 16.80, 40.03, 46.12, 50.48},
	{"lirs/ps.trace.gz", 1000, 66.28, 65.26, 48.55, 52.59, 52.59, 52.59, 66.28, 67.69},
	{"arc/OLTP.lis.gz", 500, 33.05, 31.76, 23.45, 30.85, 30.37, 32.70, 33.05, 46.43},
	{"arc/OLTP.lis.gz", 1000, 39.81, 40.01, 32.83, 39.12, 39.24, 40.84, 40.84, 53.62},
	{"arc/OLTP.lis.gz", 2000, 45.89, 45.62, 42.47, 46.15, 45.87, 46.94, 46.94, 60.40},
	{"arc/P3.lis.gz", 10000, 5.97, 6.37, 1.73, 5.02, 4.19, 5.32, 6.37, 13.05},
	{"arc/P3.lis.gz", 100000, 38.62, 40.42, 29.34, 40.67, 39.43, 41.70, 42.87, 62.00},
	{"caffeine-other/cache2k/web12.trace.gz", 1000, 67.48, 67.24, 64.73, 67.49, 67.09, 68.59, 68.59, 77.75},
	{"caffeine-other/cache2k/web12.trace.gz", 4000, 77.98, 77.90, 78.97, 80.24, 79.94, 80.11, 80.42, 85.29},
	{"caffeine-other/scarab-recs.trace.gz", 10000, 52.35, 52.20, 48.65, 52.36, 51.55, 52.53, 52.53, 66.57},
	{"caffeine-other/scarab-recs.trace.gz", 100000, 71.53, 72.90, 75.91, 76.09, 76.23, 75.63, 76.23, 79.25},
	{"caffeine-other/corda-trace_vaultservice.gz", 512, 30.44, 31.03, 33.33, 33.30, 33.33, 33.33, 33.33, 33.33},
	{"caffeine-other/corda-trace_vaultservice.gz", 2048, 24.63, 24.56, 33.33, 33.30, 33.33, 33.33, 33.33, 33.33},
	{"caffeine-other/cloudphysics-w106.trace.gz", 10000, 86.45, 86.65, 83.81, 84.21, 84.21, 85.08, 86.65, 90.02},
	{"caffeine-other/cloudphysics-w106.trace.gz", 50000, 93.90, 91.07, 93.34, 93.25, 93.36, 93.14, 93.90, 94.71},
}

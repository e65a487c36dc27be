package redistier

func runChild(mode string) int { return 2 }

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Println("hello from kvmbox", len(os.Args))
}

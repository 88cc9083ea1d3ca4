// Command libsize is the smallest program that uses the agegender library:
// it loads the built-in models and prints what they are. bench/libsize.sh
// builds it to measure what the library costs a program that imports it
// (binary size, modules linked); it is not meant to be run for results.
package main

import (
	"fmt"
	"log"

	"github.com/agegender/agegender"
)

func main() {
	a, err := agegender.New(agegender.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	g, age := a.Info()
	fmt.Printf("gender model: %+v\nage model: %+v\n", g, age)
}

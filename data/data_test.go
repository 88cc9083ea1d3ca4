package data

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestAgeGroupOfEveryAge(t *testing.T) {
	// want[g] lists the inclusive age ranges that map to group g.
	want := [NumAgeGroups][][2]int{
		{{0, 2}},
		{{3, 6}},
		{{7, 13}},
		{{14, 22}},
		{{23, 34}},
		{{35, 45}},
		{{46, 56}},
		{{57, 116}},
	}
	expect := make(map[int]AgeGroup)
	for g, ranges := range want {
		for _, r := range ranges {
			for a := r[0]; a <= r[1]; a++ {
				expect[a] = AgeGroup(g)
			}
		}
	}
	for age := 0; age <= 116; age++ {
		w, ok := expect[age]
		if !ok {
			t.Fatalf("test table misses age %d", age)
		}
		if got := AgeGroupOf(age); got != w {
			t.Errorf("AgeGroupOf(%d) = %v, want %v", age, got, w)
		}
	}
	if got := AgeGroupOf(-1); got != UnknownAge {
		t.Errorf("AgeGroupOf(-1) = %v, want unknown", got)
	}
	// Every group's own bounds map to itself.
	for g := AgeGroup(0); g < NumAgeGroups; g++ {
		lo, hi := g.Bounds()
		if AgeGroupOf(lo) != g || AgeGroupOf(hi) != g {
			t.Errorf("bounds %d..%d of %v do not map to it", lo, hi, g)
		}
	}
}

func TestParseAgeGroup(t *testing.T) {
	for i, n := range AgeGroupNames {
		g, err := ParseAgeGroup(n)
		if err != nil || g != AgeGroup(i) || g.String() != n {
			t.Errorf("ParseAgeGroup(%q) = %v, %v", n, g, err)
		}
	}
	if _, err := ParseAgeGroup("3-5"); err == nil {
		t.Error("ParseAgeGroup(3-5) succeeded")
	}
	if UnknownAge.String() != "unknown" {
		t.Error(UnknownAge.String())
	}
}

func TestGenderString(t *testing.T) {
	if Male.String() != "m" || Female.String() != "f" || UnknownGender.String() != "u" {
		t.Error(Male, Female, UnknownGender)
	}
}

func TestTask(t *testing.T) {
	for _, c := range []struct {
		task    Task
		name    string
		classes []string
	}{
		{TaskGender, "gender", []string{"m", "f"}},
		{TaskAge, "age", AgeGroupNames[:]},
	} {
		if c.task.String() != c.name || c.task.Classes() != len(c.classes) || !reflect.DeepEqual(c.task.ClassNames(), c.classes) {
			t.Errorf("%v: %d %v", c.task, c.task.Classes(), c.task.ClassNames())
		}
		if p, err := ParseTask(c.name); err != nil || p != c.task {
			t.Errorf("ParseTask(%q) = %v, %v", c.name, p, err)
		}
	}
	if _, err := ParseTask("race"); err == nil {
		t.Error("ParseTask(race) succeeded")
	}
	joint := TaskGenderAge.ClassNames()
	if p, err := ParseTask("both"); err != nil || p != TaskGenderAge || TaskGenderAge.String() != "gender+age" ||
		len(joint) != TaskGenderAge.Classes() || joint[1] != "f" || joint[2] != "0" || joint[len(joint)-1] != "100" {
		t.Errorf("joint task: ParseTask(both) = %v, %v; classes %v", p, err, joint)
	}
	for _, task := range []Task{TaskGender, TaskAge, TaskGenderAge} {
		js, err := json.Marshal(task)
		var back Task
		if err != nil || string(js) != `"`+task.String()+`"` || json.Unmarshal(js, &back) != nil || back != task {
			t.Errorf("%v: JSON %s, %v, back %v", task, js, err, back)
		}
	}
	var bad Task
	if err := json.Unmarshal([]byte(`"race"`), &bad); err == nil {
		t.Error("JSON task race accepted")
	}
	s := []Sample{
		{Path: "a", Gender: Female, AgeGroup: 3},
		{Path: "b", Gender: UnknownGender, AgeGroup: 7},
		{Path: "c", Gender: Male, AgeGroup: UnknownAge},
	}
	if TaskGender.Label(s[0]) != 1 || TaskGender.Label(s[1]) != -1 || TaskAge.Label(s[2]) != -1 || TaskAge.Label(s[1]) != 7 {
		t.Error("Label wrong")
	}
	if g := Filter(s, TaskGender); len(g) != 2 || g[0].Path != "a" || g[1].Path != "c" {
		t.Errorf("Filter gender = %v", g)
	}
	if a := Filter(s, TaskAge); len(a) != 2 || a[1].Path != "b" {
		t.Errorf("Filter age = %v", a)
	}
}

func TestSkipped(t *testing.T) {
	s := Skipped{Source: "fold_0_data.txt", Line: 3, Reason: "bad age"}
	if s.Error() != "fold_0_data.txt:3: bad age" {
		t.Error(s.Error())
	}
	if (Skipped{Source: "x.jpg", Reason: "r"}).String() != "x.jpg: r" {
		t.Error("no-line format")
	}
}

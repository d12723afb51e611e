module pingpong

go 1.26

;; The module of TestInsertPreemption: every kind of function reference
;; that InsertPreemption renumbers, and code to run through each.
;; wasm-as -g preempt.wat -o preempt.wasm
(module
  (type $t (func (param i32) (result i32)))
  (import "env" "log" (func $log (param i32)))
  (table $tab 4 funcref)
  (elem (i32.const 1) $sq $inc)
  (elem declare func $twice)
  (global $fref funcref (ref.func $inc))
  (global $started (mut i32) (i32.const 0))
  (memory 1)
  (func $sq (type $t) (i32.mul (local.get 0) (local.get 0)))
  (func $inc (type $t) (i32.add (local.get 0) (i32.const 1)))
  (func $twice (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))
  ;; recursion without a loop
  (func $fib (export "fib") (param i32) (result i32)
    (if (result i32) (i32.lt_u (local.get 0) (i32.const 2))
      (then (local.get 0))
      (else (i32.add
        (call $fib (i32.sub (local.get 0) (i32.const 1)))
        (call $fib (i32.sub (local.get 0) (i32.const 2)))))))
  (func $init (global.set $started (i32.const 1)) (call $log (i32.const 7)))
  (start $init)
  (func $run (export "run") (param $n i32) (result i64)
    (local $i i32) (local $acc i64)
    (loop $l
      (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u
        (call_indirect $tab (type $t) (local.get $i)
          (i32.add (i32.const 1) (i32.and (local.get $i) (i32.const 1)))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (i64.add (local.get $acc) (i64.extend_i32_u (global.get $started))))
  (func (export "fref") (param i32) (result i32)
    (table.set $tab (i32.const 3) (global.get $fref))
    (call_indirect $tab (type $t) (local.get 0) (i32.const 3)))
  (func (export "twice") (param i32) (result i32)
    (table.set $tab (i32.const 0) (ref.func $twice))
    (call_indirect $tab (type $t) (local.get 0) (i32.const 0)))
  ;; a loop with a result
  (func (export "sum") (param $n i32) (result i32)
    (local $i i32) (local $s i32)
    (loop $l (result i32)
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (local.set $s (i32.add (local.get $s) (local.get $i)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n)))
      (local.get $s))))

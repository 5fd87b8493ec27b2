;; String ABI benchmark: returns the input JSON with "b" appended, copying it
;; into a bump-allocated output buffer as a real function would.
(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "echo_string") (param $ptr i32) (param $len i32) (result i32 i32)
    (local $out i32)
    (local.set $out (global.get $heap))
    (memory.copy (local.get $out) (local.get $ptr) (local.get $len))
    (i32.store8 (i32.add (local.get $out) (local.get $len)) (i32.const 98))
    (local.get $out)
    (i32.add (local.get $len) (i32.const 1))))

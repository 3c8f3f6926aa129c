//! Cells: `Value<T>` and `Array<T, N>`, Python's shared `Value` and `Array`.

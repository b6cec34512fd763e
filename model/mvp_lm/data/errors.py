"""The one error type for bad input data: it always names the file, the record and the field."""
from __future__ import annotations


class DataFormatError(ValueError):
    def __init__(self, file: str, record: object, field: str, problem: str):
        self.file, self.record, self.field, self.problem = str(file), record, field, problem
        super().__init__(f"{self.file}: record {record}: field '{field}': {problem}")

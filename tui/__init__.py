"""heapwatch's Textual dashboard."""

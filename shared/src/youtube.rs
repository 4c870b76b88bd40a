//! The YouTube Data API client (in progress).

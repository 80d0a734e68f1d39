//! Dispatcher, workers and scheduler of Syncline.

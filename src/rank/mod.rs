//! Rankers: the black box that picks items for a user (popularity, item-kNN, BPR-MF, or ranked
//! lists from a file behind one `Ranker` trait), and full-ranking evaluation (HR@K, NDCG@K, MRR).
//! Never recommends an item already in the user's train history.

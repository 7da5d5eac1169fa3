"""networks/nets"""

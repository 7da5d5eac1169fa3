"""networks/blocks"""
